"""POST /api/v1/tasks/batch over real HTTP, on both stores: the tasks made in order and
run; one bad spec (by pydantic, by the spec's own checks, by the store's) a 422
naming its index and field with nothing written; the caps on count and body bytes;
roles and tenants as the single submit has them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.httpyard import STORES, Deployment, assert_problem, deployment

BATCH = "/api/v1/tasks/batch"


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def named(yard: Deployment, name: str, who: str = "admin") -> list[dict[str, Any]]:
    answer = yard.call(who, "GET", "/api/v1/tasks", params={"name": name, "limit": 500})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_batch_makes_its_tasks_in_order_and_they_run(yard: Deployment) -> None:
    tag = uuid.uuid4().hex[:8]
    specs = [{"argv": ["echo", "one"], "name": f"{tag}-0"},
             {"function": "add", "kwargs": {"a": 2, "b": 3}, "name": f"{tag}-1",
              "meta": {"batch": tag}},
             {"argv": ["true"], "name": f"{tag}-2", "delay": "1h", "queue": "later"}]
    answer = yard.call("operator", "POST", BATCH, json={"tasks": specs})
    assert answer.status_code == 201, answer.text
    tasks = answer.json()["tasks"]
    assert [t["name"] for t in tasks] == [s["name"] for s in specs]
    assert [t["id"] for t in tasks] == sorted(t["id"] for t in tasks)
    assert tasks[1]["meta"] == {"batch": tag} and tasks[2]["status"] == "scheduled"
    assert tasks[2]["queue"] == "later"
    assert yard.wait(tasks[0]["id"])["status"] == "succeeded"
    assert yard.wait(tasks[1]["id"])["result"] == 5


@pytest.mark.parametrize(("bad", "field"), [
    ({"argv": ["echo", 5]}, "tasks.2.argv.1"),            # pydantic: a wrong type
    ({"argv": ["true"], "colour": "red"}, "tasks.2.colour"),  # pydantic: unknown field
    ({"argv": ["true"], "function": "add"}, "tasks.2.argv"),  # the spec's checks
    ({"argv": ["true"], "cwd": "relative"}, "tasks.2.cwd"),
    ({"argv": ["true"], "timeout": -1.0}, "tasks.2.timeout"),  # every submit's checks
])
def test_one_bad_spec_is_named_and_nothing_is_written(yard: Deployment, bad: dict[str, Any],
                                                      field: str) -> None:
    tag = uuid.uuid4().hex[:8]
    good = {"argv": ["true"], "name": tag, "delay": "1h"}
    answer = yard.call("operator", "POST", BATCH,
                       json={"tasks": [good, good, {"name": tag, **bad}, good]})
    assert_problem(answer, 422, field)
    if not field.startswith("tasks.2.argv.") and "colour" not in field:
        assert answer.json()["detail"].startswith("tasks[2]: "), answer.json()
    assert named(yard, tag) == []


def test_a_spec_the_store_refuses_is_named_and_nothing_is_written(yard: Deployment) -> None:
    tag = uuid.uuid4().hex[:8]
    good = {"argv": ["true"], "name": tag, "delay": "1h"}
    answer = yard.call("operator", "POST", BATCH, json={"tasks": [
        good, {**good, "tenant": "no-such-tenant"}]})
    assert_problem(answer, 404, "tasks.1.tenant")  # as the single submit answers it
    assert answer.json()["detail"].startswith("tasks[1]: no tenant"), answer.json()
    assert named(yard, tag) == []


def test_the_caps_on_count_and_bytes(yard: Deployment) -> None:
    tag = uuid.uuid4().hex[:8]
    assert_problem(yard.call("operator", "POST", BATCH, json={"tasks": []}), 422, "tasks")
    one = {"argv": ["true"], "name": tag, "delay": "1h"}
    assert_problem(yard.call("operator", "POST", BATCH, json={"tasks": [one] * 1001}), 422,
                   "tasks")
    assert named(yard, tag) == []
    # 1,000 specs of 4 KiB: twice what any other route takes, one batch
    big = {**one, "meta": {"pad": "x" * 4096}}
    answer = yard.call("operator", "POST", BATCH, json={"tasks": [big] * 1000})
    assert answer.status_code == 201, answer.text[:300]
    assert len(answer.json()["tasks"]) == 1000
    huge = json.dumps({"tasks": [{**one, "meta": {"pad": "x" * 20_000}}] * 900}).encode()
    assert len(huge) > 16 * 1024 * 1024
    answer = yard.call("operator", "POST", BATCH, content=huge,
                       headers={"Content-Type": "application/json"})
    assert_problem(answer, 413, "body")
    assert len(named(yard, tag)) == 500  # the page: only the first batch was written
    tasks = yard.call("admin", "GET", "/api/v1/tasks/counts", params={"name": tag}).json()
    assert tasks["total"] == 1000


def test_roles_and_tenants_as_a_single_submit(yard: Deployment) -> None:
    tag = uuid.uuid4().hex[:8]
    spec = {"argv": ["true"], "name": tag, "delay": "1h", "tenant": "rival"}
    assert_problem(yard.call("viewer", "POST", BATCH, json={"tasks": [spec]}), 403)
    assert_problem(yard.call(None, "POST", BATCH, json={"tasks": [spec]}), 401)
    answer = yard.call("acme-operator", "POST", BATCH, json={"tasks": [spec, spec]})
    assert answer.status_code == 201, answer.text
    assert {t["tenant"] for t in answer.json()["tasks"]} == {"acme"}  # the token's wins
    rivals = yard.call("rival-operator", "POST", BATCH, json={"tasks": [spec]}).json()
    theirs = rivals["tasks"][0]["id"]
    # a task of another tenant to run after is as unknown as one that never was
    answer = yard.call("acme-operator", "POST", BATCH,
                       json={"tasks": [spec, {**spec, "after": [theirs]}]})
    assert_problem(answer, 404, "tasks.1.after")
    assert len(named(yard, tag, "acme-viewer")) == 2
    assert len(named(yard, tag, "rival-viewer")) == 1
    answer = yard.call("operator", "POST", BATCH, json={"tasks": [spec]},
                       headers={"Idempotency-Key": "k1"})
    assert_problem(answer, 422, "Idempotency-Key")
