"""The task routes over real HTTP, on both stores, with a task server running them:
submit (Idempotency-Key: the first task again, 200 vs 201), list by pages and
filters, counts, detail and why a task waits, wait, every control (kill, pause,
resume, restart, stdin, signal, config, meta, delete) doing what it says, and 409
with the reason in the wrong state; bulk actions by dry run and snapshot."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from taskyard.testing import wait_for
from tests.e2e.httpyard import STORES, Deployment, assert_problem, deployment

TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def post(yard: Deployment, path: str, who: str = "operator", **kw: Any) -> Any:
    answer = yard.call(who, "POST", TASKS + path, **kw)
    assert answer.status_code == 200, answer.text
    return answer.json()


def running(yard: Deployment, **body: Any) -> dict[str, Any]:
    task = yard.submit("operator", **body)
    wait_for(lambda: yard.task(task["id"])["status"] == "running", message="it runs")
    return task


def test_an_idempotency_key_answers_the_first_task(yard: Deployment) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = yard.call("operator", "POST", TASKS, json={"argv": ["true"]}, headers=key)
    assert first.status_code == 201, first.text
    for body in ({"argv": ["true"]}, {"argv": ["false"], "name": "changed"}):
        again = yard.call("operator", "POST", TASKS, json=body, headers=key)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = yard.call("admin", "POST", TASKS, json={"argv": ["true"]}, headers=key)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    with ThreadPoolExecutor(8) as pool:  # a client's retries racing each other
        answers = list(pool.map(lambda _: yard.call("operator", "POST", TASKS,
                                                    json={"argv": ["true"]}, headers=key),
                                range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1


def test_list_pages_filters_and_counts(yard: Deployment) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [yard.submit("operator", argv=["true"], name=f"page-{tag}", queue=f"q-{tag}",
                        meta={"batch": tag, "n": i, "deep": {"odd": i % 2 == 1}},
                        delay="1h")["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"name": f"page-{tag}", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = yard.call("viewer", "GET", TASKS, params=params).json()
        seen += [t["id"] for t in page["items"]]
        if cursor is None:  # a task added meanwhile does not shift the pages
            made.append(yard.submit("operator", argv=["true"], name=f"page-{tag}",
                                    delay="1h")["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made[:5], reverse=True)
    for params, expected in (({"queue": f"q-{tag}"}, made[:5]),
                             ({"meta.batch": tag, "meta.n": "3"}, [made[3]]),
                             ({"meta.deep.odd": "true", "meta.batch": tag}, [made[1], made[3]]),
                             ({"q": tag, "status": "scheduled,queued"}, made),
                             ({"q": tag, "status": ["succeeded", "failed"]}, []),
                             ({"name": f"page-{tag[:4]}*", "kind": "command"}, made),
                             ({"q": tag, "kind": "function"}, []),
                             ({"q": tag, "since": "1h", "until": "2999-01-01"}, made),
                             ({"q": tag, "until": "1h"}, [])):
        page = yard.call("viewer", "GET", TASKS, params=params).json()
        assert sorted(t["id"] for t in page["items"]) == sorted(expected), params
    counts = yard.call("viewer", "GET", f"{TASKS}/counts", params={"queue": f"q-{tag}"}).json()
    assert counts["counts"]["scheduled"] == 5 and counts["total"] == 5
    for action in ("kill", "delete"):
        bulk = post(yard, "/bulk", json={"action": action, "filter": {"q": tag}})
        assert bulk["count"] == 6 and sorted(bulk["done"]) == sorted(made), bulk


def test_detail_says_why_a_task_waits_and_wait_long_polls(yard: Deployment) -> None:
    queue = f"held-{uuid.uuid4().hex[:8]}"
    assert yard.call("admin", "PATCH", f"/api/v1/queues/{queue}",
                     json={"paused": True}).status_code == 200
    task = yard.submit("operator", argv=["true"], queue=queue)
    detail = yard.task(task["id"], "viewer")
    assert [w["code"] for w in detail["waiting"]] == ["queue_paused"]
    assert detail["attempts"] == [] and detail["events"][0]["to"] == "queued"
    waited = yard.call("viewer", "GET", f"{TASKS}/{task['id']}/wait", params={"timeout": 0.2})
    assert waited.json()["timed_out"] is True and waited.json()["status"] == "queued"
    assert yard.call("admin", "PATCH", f"/api/v1/queues/{queue}",
                     json={"paused": False}).json()["paused"] is False
    ended = yard.wait(task["id"], "viewer")
    assert ended["status"] == "succeeded" and ended["timed_out"] is False
    detail = yard.task(task["id"], "viewer")
    assert detail["waiting"] == [] and len(detail["attempts"]) == 1
    assert [e["to"] for e in detail["events"]] == ["queued", "running", "succeeded"]
    assert detail["events"][0]["by"] == "token:" + next(
        t["name"] for t in yard.call("admin", "GET", "/api/v1/tokens").json()
        if t["id"] == yard.token_ids["operator"])


def conflict(yard: Deployment, path: str, reason: str, **kw: Any) -> None:
    answer = yard.call("operator", "POST" if "meta" not in path else "PATCH", TASKS + path, **kw)
    assert_problem(answer, 409)
    assert reason in answer.json()["detail"], answer.json()


def test_controls_in_the_wrong_state_are_409_with_the_reason(yard: Deployment) -> None:
    done = yard.submit("operator", argv=["true"])["id"]
    yard.wait(done)
    for verb in ("kill", "pause", "resume"):
        conflict(yard, f"/{done}/{verb}", f"cannot {verb} task {done}: it is succeeded")
    conflict(yard, f"/{done}/signal", "only function tasks", json={"name": "go"})
    live = running(yard, argv=["sleep", "30"])["id"]
    conflict(yard, f"/{live}/resume", f"cannot resume task {live}: it is running")
    conflict(yard, f"/{live}/restart", "running")
    deleted = yard.call("operator", "DELETE", f"{TASKS}/{live}")
    assert_problem(deleted, 409)
    assert "running" in deleted.json()["detail"]
    assert post(yard, f"/{live}/pause")["status"] == "paused"
    conflict(yard, f"/{live}/pause", f"cannot pause task {live}: it is paused")
    assert_problem(yard.call("operator", "POST", f"{TASKS}/{live}/stdin", content=b"x"), 422,
                   "stdin")
    conflict(yard, f"/{live}/kill", "only function tasks", json={"graceful": True})
    assert yard.call("operator", "DELETE", f"{TASKS}/{live}",
                     params={"force": True}).status_code == 204
    assert_problem(yard.call("viewer", "GET", f"{TASKS}/{live}"), 404, "id")
    fn = yard.submit("operator", function="wait_signal")["id"]
    assert post(yard, f"/{fn}/kill")["status"] in ("stopped", "running", "queued")
    yard.wait(fn)
    conflict(yard, f"/{fn}/signal", f"cannot signal task {fn}: it is stopped",
             json={"name": "go"})
    assert_problem(yard.call("operator", "PATCH", f"{TASKS}/{fn}/config", json={"a": 1}), 409)


def test_controls_do_what_they_say(yard: Deployment) -> None:
    task = running(yard, argv=["sleep", "30"])["id"]
    assert post(yard, f"/{task}/pause")["status"] == "paused"
    assert post(yard, f"/{task}/resume")["status"] == "running"
    killed = post(yard, f"/{task}/kill", json={"signal": "INT"})
    ended = yard.wait(killed["id"])
    assert (ended["status"], ended["reason"], ended["signal"]) == ("stopped", "killed", 2)
    assert post(yard, f"/{task}/restart")["status"] in ("queued", "running")
    wait_for(lambda: yard.task(task)["attempt"] == 2 and yard.task(task)["status"] == "running",
             message="attempt 2 runs")
    assert post(yard, f"/{task}/kill")["id"] == task
    assert yard.wait(task)["reason"] == "killed"
    meta = yard.call("operator", "PATCH", f"{TASKS}/{task}/meta",
                     json={"owner": "ops", "tags": {"a": 1, "b": 2}})
    assert meta.json()["meta"] == {"owner": "ops", "tags": {"a": 1, "b": 2}}
    meta = yard.call("operator", "PATCH", f"{TASKS}/{task}/meta",
                     json={"tags": {"a": None}, "owner": None})
    assert meta.json()["meta"] == {"tags": {"b": 2}}
    assert yard.call("operator", "DELETE", f"{TASKS}/{task}").status_code == 204
    assert_problem(yard.call("viewer", "GET", f"{TASKS}/{task}"), 404)
    queued = yard.submit("operator", argv=["true"], delay="1h")["id"]
    assert post(yard, f"/{queued}/kill")["status"] == "stopped"  # before it starts


def test_function_tasks_get_signals_config_and_a_graceful_stop(yard: Deployment) -> None:
    signalled = running(yard, function="wait_signal")["id"]
    sent = post(yard, f"/{signalled}/signal", json={"name": "go", "data": {"x": [1, 2]}})
    assert sent["name"] == "go" and sent["task_id"] == signalled
    assert yard.wait(signalled)["result"] == {"x": [1, 2]}
    configured = running(yard, function="wait_config")["id"]
    assert yard.call("viewer", "GET", f"{TASKS}/{configured}/config").json() == {"config": {}}
    changed = yard.call("operator", "PATCH", f"{TASKS}/{configured}/config",
                        json={"speed": 2, "mode": "fast"})
    assert changed.json() == {"config": {"speed": 2, "mode": "fast"}}
    assert yard.wait(configured)["status"] == "succeeded"
    stopping = running(yard, function="graceful")["id"]
    post(yard, f"/{stopping}/kill", json={"graceful": True})
    ended = yard.wait(stopping)
    assert ended["status"] == "succeeded" and ended["result"]["stopped_after"] >= 0


def test_bulk_acts_on_exactly_the_dry_runs_set(yard: Deployment) -> None:
    name = f"bulk-{uuid.uuid4().hex[:8]}"
    made = [yard.submit("operator", argv=["true"], name=name, delay="1h")["id"]
            for _ in range(53)]
    dry = post(yard, "/bulk", json={"action": "kill", "dry_run": True, "filter": {"name": name}})
    assert dry["count"] == 53 and dry["ids"] == sorted(made, reverse=True)[:50]
    assert dry["snapshot"] and dry["done"] == [] and dry["failed"] == {}
    late = yard.submit("operator", argv=["true"], name=name, delay="1h")["id"]
    for action, who in (("delete", "operator"), ("kill", "admin")):  # its action, its token
        assert_problem(yard.call(who, "POST", TASKS + "/bulk", json={
            "action": action, "snapshot": dry["snapshot"]}), 404, "snapshot")
    done = post(yard, "/bulk", json={"action": "kill", "snapshot": dry["snapshot"],
                                     "filter": {"name": "ignored with a snapshot"}})
    assert sorted(done["done"]) == sorted(made) and done["failed"] == {}
    assert yard.task(late)["status"] == "scheduled"
    assert {yard.task(i)["status"] for i in made[:3]} == {"stopped"}
    again = post(yard, "/bulk", json={"action": "kill", "snapshot": dry["snapshot"]})
    assert again["done"] == [] and sorted(again["failed"]) == sorted(map(str, made))
    assert "stopped" in again["failed"][str(made[0])]
    viewer = yard.call("viewer", "POST", TASKS + "/bulk", json={"action": "kill",
                                                               "dry_run": True})
    assert_problem(viewer, 403)
    rest = post(yard, "/bulk", json={"action": "delete", "filter": {"name": name}})
    assert rest["count"] == 54 and sorted(rest["done"]) == sorted(made)
    assert list(rest["failed"]) == [str(late)] and "scheduled" in rest["failed"][str(late)]
    post(yard, f"/{late}/kill")
    assert post(yard, "/bulk", json={"action": "delete", "filter": {"name": name}})["done"] == [
        late]


def test_env_values_are_never_shown(yard: Deployment) -> None:
    task = yard.submit("operator", argv=["sh", "-c", "true"], env={"API_KEY": "hunter2-secret"},
                       name="with-secret")
    yard.wait(task["id"])
    assert task["env_keys"] == ["API_KEY"]
    for path in (f"{TASKS}/{task['id']}", f"{TASKS}?name=with-secret",
                 f"{TASKS}/{task['id']}/wait", "/metrics"):
        answer = yard.call("admin", "GET", path)
        assert answer.status_code == 200 and "hunter2" not in answer.text, path


def test_a_task_shows_its_status_file(yard: Deployment, tmp_path: Any) -> None:
    """The path its attempt's server writes (fixed at the claim), in the task and in
    each attempt; null where there are no status files."""
    from taskyard.testing import cli

    plain = yard.wait(yard.submit(argv=["true"])["id"])
    shown = yard.task(plain["id"])
    assert shown["status_file"] is None and shown["attempts"][0]["status_file"] is None
    folder = tmp_path / "status"
    assert cli(yard.home, "queue", "set", "statusq", "--status-dir",
               str(folder)).returncode == 0
    task = yard.wait(yard.submit(argv=["true"], queue="statusq")["id"])
    path = str(folder / "statusq" / str(task["id"]))
    shown = yard.task(task["id"])
    assert shown["status_file"] == path and shown["attempts"][0]["status_file"] == path
    wait_for(lambda: os.path.exists(path), message="the file is there")
