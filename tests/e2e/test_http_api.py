"""The HTTP API's gate, over real HTTP against a real ``taskyard web`` on a real store
(SQLite and PostgreSQL): the route table is every route; every route but /health
refuses a missing, wrong, revoked or expired token; roles × routes; and another
tenant's objects are not found anywhere (not in a route, a list, a count, a stream
or the metrics)."""

from __future__ import annotations

import re
import secrets
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from typing import Any

import httpx
import pytest

from taskyard.testing import wait_for
from tests.e2e.httpyard import (
    ROLES,
    ROUTES,
    STORES,
    Deployment,
    Route,
    assert_problem,
    deployment,
    role_at_least,
)

NOWHERE = 10**12  #: a task id no test makes
_addresses = count(2)
_TLS = ssl.create_default_context()


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def _from_own_address(base: str, method: str, url: str, headers: dict[str, str],
                      **kw: Any) -> httpx.Response:
    """A request from a loopback address of its own: the web process slows down and
    then refuses wrong tokens per client address, and this test sends many."""
    n = next(_addresses)
    transport = httpx.HTTPTransport(local_address=f"127.1.{n // 250}.{n % 250 + 1}",
                                    verify=_TLS)  # making one per client takes 30 ms
    with httpx.Client(base_url=base, transport=transport, timeout=60) as client:
        return client.request(method, url, headers=headers, **kw)


def test_the_route_table_is_every_route(yard: Deployment) -> None:
    schema = yard.call("admin", "GET", "/api/v1/openapi.json").json()
    documented = {(method.upper(), path) for path, item in schema["paths"].items()
                  for method in item}
    hidden = {("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs")}
    assert documented | hidden == {(r.method, r.path) for r in ROUTES} | {("GET", "/health")}


def test_every_route_but_health_refuses_a_bad_token(yard: Deployment) -> None:
    task_id = yard.submit(argv=["echo", "secret-output"])["id"]
    yard.wait(task_id)
    revoked_id, revoked = yard.add_token("admin")
    assert yard.call("admin", "DELETE", f"/api/v1/tokens/{revoked_id}").status_code == 200
    expiring_id, expiring = yard.add_token("admin", expires="1s")
    wait_for(lambda: _from_own_address(yard.base, "GET", "/api/v1/tasks", {
        "Authorization": f"Bearer {expiring}"}).status_code == 401, message="expiry")
    bad = {"none": {}, "wrong": {"Authorization": f"Bearer tyk_{secrets.token_urlsafe(32)}"},
           "revoked": {"Authorization": f"Bearer {revoked}"},
           "expired": {"Authorization": f"Bearer {expiring}"},
           "not bearer": {"Authorization": f"Basic {yard.tokens['admin']}"},
           "bare": {"Authorization": yard.tokens["admin"]}}
    calls = []
    for route in ROUTES:
        url, kw = route.request(task_id=task_id, name="default", token_id=expiring_id,
                                tag="refused")
        for kind, headers in bad.items():
            calls.append((route, kind, url, headers, kw))
        # a token in the URL is not a token; nor is a body that would fail to parse
        calls.append((route, "in query", url, {}, {**kw, "params": {
            "token": yard.tokens["admin"], "access_token": yard.tokens["admin"]}}))
        if route.method in ("POST", "PATCH"):
            calls.append((route, "bad body", url, {"Content-Type": "application/json"},
                          {"content": b'{"argv": [' + b"[" * 50_000}))

    def check(call: tuple[Route, str, str, dict[str, str], dict[str, Any]]) -> None:
        route, kind, url, headers, kw = call
        answer = _from_own_address(yard.base, route.method, url, headers, **kw)
        assert_problem(answer, 401)
        assert answer.headers.get("www-authenticate") == "Bearer", (route, kind)
        assert "secret-output" not in answer.text

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(check, calls))
    health = httpx.get(yard.base + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # nothing was done by the refused calls
    assert yard.task(task_id)["meta"] == {}
    tokens = {t["id"]: t for t in yard.call("admin", "GET", "/api/v1/tokens").json()}
    assert tokens[expiring_id]["revoked_at"] is None


def test_a_token_is_refused_at_its_next_request_once_revoked_or_expired(
        yard: Deployment) -> None:
    token_id, secret = yard.add_token("viewer")
    expiring_id, expiring = yard.add_token("viewer", expires="3s")
    made = time.monotonic()
    for token in (secret, expiring):
        answer = _from_own_address(yard.base, "GET", "/api/v1/tasks",
                                   {"Authorization": f"Bearer {token}"})
        # (unless this machine stalled for the expiring token's 3 s)
        assert answer.status_code == 200 or time.monotonic() - made > 2.5, answer.text
    assert yard.call("admin", "DELETE", f"/api/v1/tokens/{token_id}").json()["revoked_at"]
    answer = _from_own_address(yard.base, "GET", "/api/v1/tasks",
                               {"Authorization": f"Bearer {secret}"})
    assert_problem(answer, 401)
    wait_for(lambda: _from_own_address(yard.base, "GET", "/api/v1/tasks", {
        "Authorization": f"Bearer {expiring}"}).status_code == 401, timeout=15,
        message="the expired token is refused")


def test_wrong_tokens_never_lock_out_a_valid_one(yard: Deployment) -> None:
    """Wrong tokens from one address are slowed down, then refused (429); a valid token
    from that same address (say, every client behind one reverse proxy) is served."""
    if yard.kind != "sqlite":
        pytest.skip("the throttle is the web process's, whatever the store")
    transport = httpx.HTTPTransport(local_address="127.2.0.1")
    with httpx.Client(base_url=yard.base, transport=transport, timeout=60) as client:
        wrong = {"Authorization": "Bearer tyk_wrong"}
        with ThreadPoolExecutor(20) as pool:  # 20 at once: they wait 8 s at most
            answers = list(pool.map(lambda _: client.get("/api/v1/tasks", headers=wrong),
                                    range(20)))
        for answer in answers:
            assert_problem(answer, 401)
        assert_problem(client.get("/api/v1/tasks", headers=wrong), 429)
        good = client.get("/api/v1/tasks", headers={
            "Authorization": f"Bearer {yard.tokens['viewer']}"})
        assert good.status_code == 200, good.text


PRINCIPALS = [*ROLES, *(f"acme-{role}" for role in ROLES)]


@pytest.mark.parametrize("who", PRINCIPALS)
def test_roles_by_route(yard: Deployment, who: str) -> None:
    """Each route answers 403 (a problem naming the role) below its least role, or to a
    tenant's token when it is for every tenant's tokens; otherwise it does its work
    (on targets that do not exist, so nothing changes: 404)."""
    role, tenant = who.split("-")[-1], who.split("-")[0] if "-" in who else None
    before = yard.call("admin", "GET", "/api/v1/tasks/counts").json()["total"]
    submitted = 0
    for route in ROUTES:
        url, kw = route.request(task_id=NOWHERE, name=f"no-such-{who}", token_id=NOWHERE,
                                tag=f"{who}-{yard.kind}")
        answer = yard.call(who, route.method, url, **kw)
        allowed = role_at_least(role, route.role) and not (tenant and route.global_only)
        if not allowed:
            assert_problem(answer, 403)
            continue
        assert answer.status_code in (200, 201, 204, 404), (who, route, answer.text)
        if answer.status_code == 404:
            assert answer.headers["content-type"] == "application/problem+json"
        if route.path == "/api/v1/tasks" and route.method == "POST":
            submitted += 1
            assert answer.json()["tenant"] == (tenant or "default")
        if route.path == "/api/v1/tasks/batch":
            submitted += 1
            assert answer.json()["tasks"][0]["tenant"] == (tenant or "default")
    after = yard.call("admin", "GET", "/api/v1/tasks/counts").json()["total"]
    assert after - before == submitted


def _rival_objects(yard: Deployment) -> tuple[dict[str, Any], str]:
    rival = yard.submit("rival-operator", argv=["sh", "-c", "echo rival-secret; exec sleep 60"],
                        queue="sharedq", name="rival-task", meta={"owner": "rival"},
                        unique=f"shared-key-{yard.kind}", mutex=f"shared-mutex-{yard.kind}",
                        stdin_open=True)
    wait_for(lambda: yard.task(rival["id"])["status"] == "running", message="rival runs")
    assert yard.call("admin", "PATCH", "/api/v1/queues/sharedq",
                     json={"parallel": 1}).status_code == 200
    name = f"rival-sched-{yard.kind}"
    made = yard.call("rival-admin", "POST", "/api/v1/schedules", json={
        "name": name, "expr": "@yearly", "tz": "UTC", "task": {"argv": ["true"]}})
    assert made.status_code == 201 and made.json()["tenant"] == "rival", made.text
    return rival, name


def _settled(yard: Deployment, who: str) -> bool:
    counts = yard.call(who, "GET", "/api/v1/tasks/counts").json()["counts"]
    return counts["queued"] + counts["running"] + counts["paused"] == 0


def _no_rival(text: str, rival_id: int) -> None:
    assert "rival" not in text, text[:1000]
    assert not re.search(rf"\btasks? {rival_id}\b|, {rival_id}\b", text), text[:1000]


def test_another_tenants_objects_are_not_found_anywhere(yard: Deployment) -> None:
    rival, sched = _rival_objects(yard)
    rid = rival["id"]
    before = yard.task(rid)
    for who in (f"acme-{role}" for role in ROLES):
        role = who.split("-")[1]
        for route in ROUTES:
            if not role_at_least(role, route.role) or route.global_only:
                continue
            if not (route.takes_task or "{name}" in route.path):
                continue
            url, kw = route.request(task_id=rid, name=sched, tag=f"iso-{who}")
            answer = yard.call(who, route.method, url, **kw)
            assert_problem(answer, 404)  # never 403, and as for what does not exist:
            url, kw = route.request(task_id=NOWHERE, name="none", tag=f"iso-{who}")
            unknown = yard.call(who, route.method, url, **kw).json()
            assert answer.json() == {**unknown, "detail": unknown["detail"].replace(
                str(NOWHERE), str(rid)).replace("'none'", repr(sched))}
    after = yard.task(rid)
    for key in ("status", "meta", "config", "attempt", "events"):
        assert after[key] == before[key], key
    assert yard.call("admin", "GET", f"/api/v1/schedules/{sched}").json()["paused"] is False

    viewer = "acme-viewer"
    wait_for(lambda: _settled(yard, viewer), message="acme's earlier tasks ended")
    own = yard.submit("acme-operator", argv=["true"], queue="sharedq", tenant="rival",
                      mutex=f"shared-mutex-{yard.kind}")
    assert own["tenant"] == "acme"  # a tenant's token submits into its tenant only
    listed = yard.call(viewer, "GET", "/api/v1/tasks", params={"limit": 500}).json()
    assert {t["tenant"] for t in listed["items"]} == {"acme"}
    for params in ({"tenant": "rival"}, {"queue": "sharedq", "tenant": "rival"},
                   {"q": "rival-task"}, {"meta.owner": "rival"}, {"name": "rival-task"}):
        found = yard.call(viewer, "GET", "/api/v1/tasks", params=params)
        assert found.status_code == 200 and found.json()["items"] == [], (params, found.text)
        counted = yard.call(viewer, "GET", "/api/v1/tasks/counts", params=params)
        assert counted.status_code == 200 and counted.json()["total"] == 0, params
    counts = yard.call(viewer, "GET", "/api/v1/tasks/counts").json()
    assert counts["counts"]["running"] == 0 and counts["total"] == len(listed["items"])
    queues = {q["name"]: q for q in yard.call(viewer, "GET", "/api/v1/queues").json()}
    assert queues["sharedq"]["tasks"]["running"] == 0
    assert queues["sharedq"]["tasks"]["queued"] + queues["sharedq"]["tasks"]["scheduled"] == 1
    assert [t["name"] for t in yard.call(viewer, "GET", "/api/v1/tenants").json()] == ["acme"]
    assert sched not in yard.call(viewer, "GET", "/api/v1/schedules").text
    metrics = yard.call(viewer, "GET", "/metrics").text
    assert 'tenant="acme"' in metrics and 'tenant="rival"' not in metrics
    assert "taskyard_servers_alive" not in metrics
    dry = yard.call("acme-operator", "POST", "/api/v1/tasks/bulk",
                    json={"action": "kill", "dry_run": True}).json()
    assert rid not in dry["ids"] and dry["count"] == len(listed["items"])
    # why the acme task waits: the queue's limit and the mutex, held by a task it cannot see
    waiting = wait_for(lambda: yard.task(own["id"], viewer)["waiting"], message="reasons")
    _no_rival(str(waiting), rid)
    assert {"queue_limit", "mutex"} <= {w["code"] for w in waiting}, waiting
    # --after naming another tenant's task is refused as an unknown id would be
    for after in (rid, NOWHERE):
        answer = yard.call("acme-operator", "POST", "/api/v1/tasks",
                           json={"argv": ["true"], "after": [after]})
        assert_problem(answer, 404, "after")
        assert answer.json()["detail"] == f"no task {after}", answer.text
    # a unique key is each tenant's own: another tenant's live task with it is not found
    answer = yard.call("acme-operator", "POST", "/api/v1/tasks",
                       json={"argv": ["true"], "unique": f"shared-key-{yard.kind}"})
    assert answer.status_code == 201 and answer.json()["tenant"] == "acme", answer.text
    _no_rival(answer.text, rid)
    yard.call("admin", "POST", f"/api/v1/tasks/{answer.json()['id']}/kill")
    # the rival's own view is whole
    mine = yard.call("rival-viewer", "GET", "/api/v1/tasks").json()["items"]
    assert [t["id"] for t in mine] == [rid]
    for task_id in (rid, own["id"]):
        yard.call("admin", "POST", f"/api/v1/tasks/{task_id}/kill")
    assert yard.call("admin", "PATCH", "/api/v1/queues/sharedq",
                     json={"parallel": None}).status_code == 200


def test_panel_pages_need_a_session(yard: Deployment) -> None:
    """The panel is not served to a bearer token or to nobody: it asks for a login."""
    task_id = yard.submit(argv=["echo", "panel-secret"])["id"]
    yard.wait(task_id)
    for path in ("/tasks", f"/tasks/{task_id}", "/queues", "/schedules", "/tenants",
                 "/servers", "/stats"):
        for who in (None, "admin"):
            answer = yard.call(who, "GET", path, headers={"Accept": "text/html"})
            assert answer.status_code == 303 and answer.headers["location"].endswith(
                "/login"), (path, who, answer.status_code)
    answer = yard.call(None, "POST", f"/tasks/{task_id}/do/kill")
    assert answer.status_code in (303, 401, 403) and "panel-secret" not in answer.text
