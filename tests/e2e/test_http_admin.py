"""The routes around tasks over real HTTP, on both stores: queues, schedules, tenants,
servers, tokens, /metrics, /health, the OpenAPI document and its docs page, security
headers, and the API under a reverse proxy's prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from taskyard.testing import wait_for, web_process
from tests.e2e.httpyard import STORES, Deployment, assert_problem, clean_env, deployment


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def test_queues(yard: Deployment) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"parallel": 2, "paused": True})
    assert answer.json() == {"name": name, "paused": True, "parallel": 2, "limits": {},
                             "on_finish": None, "on_finish_url": None, "retain": None,
                             "retain_count": None, "rate": None, "output_head": None,
                             "output_tail": None, "status_dir": None, "tasks": {
        s: 0 for s in ("scheduled", "queued", "running", "paused", "succeeded", "failed",
                       "stopped")}}
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"on_finish": ["notify", "--q"], "on_finish_url": "",
                             "retain": "7d", "retain_count": 100})
    got = answer.json()
    assert (got["on_finish"], got["on_finish_url"], got["retain"], got["retain_count"]) == (
        ["notify", "--q"], "", 7 * 86400, 100)
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"output_head": "64K", "output_tail": 0})
    assert (answer.json()["output_head"], answer.json()["output_tail"]) == (65536, 0)
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"output_head": None, "output_tail": "lots"})
    assert answer.status_code == 422 and "output_tail" in answer.text
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"output_head": None, "output_tail": None})
    assert (answer.json()["output_head"], answer.json()["output_tail"]) == (None, None)
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"on_finish": None, "on_finish_url": None, "retain": None,
                             "retain_count": None})
    got = answer.json()
    assert (got["on_finish"], got["on_finish_url"], got["retain"], got["retain_count"]) == (
        None, None, None, None)
    for bad, field in (({"on_finish": [""]}, "on_finish"), ({"retain": "soon"}, "retain"),
                       ({"on_finish_url": "ftp://x"}, "on_finish_url")):
        answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}", json=bad)
        assert answer.status_code == 422, answer.text
        assert field.replace("_", "") in answer.text.replace("-", "").replace("_", "")
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",  # all or none
                       json={"retain": "9d", "parallel": 7, "rate": "5/0s"})
    assert answer.status_code == 422 and "rate" in answer.text, answer.text
    got = yard.call("admin", "PATCH", f"/api/v1/queues/{name}", json={}).json()
    assert (got["retain"], got["parallel"], got["rate"]) == (None, 2, None), got
    task = yard.submit("operator", argv=["true"], queue=name)
    queues = {q["name"]: q for q in yard.call("viewer", "GET", "/api/v1/queues").json()}
    assert queues[name]["tasks"]["queued"] == 1 and queues[name]["paused"] is True
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"paused": False, "parallel": None})
    assert (answer.json()["paused"], answer.json()["parallel"]) == (False, None)
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"limits": {"memory": "512M", "cpu": 60}})
    assert answer.json()["limits"] == {"memory": 512 << 20, "cpu": 60}
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                       json={"limits": {"cpu": None, "files": 64}})
    assert answer.json()["limits"] == {"memory": 512 << 20, "files": 64}
    bad = yard.call("admin", "PATCH", f"/api/v1/queues/{name}", json={"limits": {"cpu": "x"}})
    assert_problem(bad, 422, "limits.cpu")
    answer = yard.call("admin", "PATCH", f"/api/v1/queues/{name}", json={"rate": "100/1m"})
    assert answer.json()["rate"] == "100/1m"
    assert yard.call("admin", "PATCH", f"/api/v1/queues/{name}",
                     json={"rate": None}).json()["rate"] is None
    rated = yard.submit("operator", argv=["true"], rate_limit="api=10/30s")
    assert rated["rate_limit"] == "api=10/30s"
    assert yard.wait(rated["id"])["status"] == "succeeded"
    limited = yard.submit("operator", argv=["true"], limits={"memory": "1G", "procs": 100})
    assert limited["limits"] == {"memory": 1 << 30, "procs": 100}
    assert yard.wait(limited["id"])["status"] == "succeeded"
    assert yard.wait(task["id"])["status"] == "succeeded"
    wait_for(lambda: {q["name"]: q for q in yard.call("viewer", "GET", "/api/v1/queues")
                      .json()}[name]["tasks"]["succeeded"] == 1, message="counted")


def test_schedules(yard: Deployment) -> None:
    name = f"sched-{uuid.uuid4().hex[:8]}"
    made = yard.call("acme-admin", "POST", "/api/v1/schedules", json={
        "name": name, "expr": "*/5 * * * *", "tz": "Europe/Berlin", "catch_up": "none",
        "task": {"argv": ["echo", "tick"], "tenant": "rival", "meta": {"from": "cron"}}})
    assert made.status_code == 201, made.text
    data = made.json()
    assert data["tenant"] == "acme" and len(data["next_five"]) == 5
    assert data["last_task"] is None and data["tz"] == "Europe/Berlin"
    assert_problem(yard.call("acme-admin", "POST", "/api/v1/schedules", json={
        "name": name, "expr": "@daily", "task": {"argv": ["true"]}}), 409, "name")
    assert_problem(yard.call("acme-operator", "POST", f"/api/v1/schedules/{name}/run"), 403)
    ran = yard.call("acme-admin", "POST", f"/api/v1/schedules/{name}/run")
    assert ran.status_code == 201 and ran.json()["schedule"] == name
    assert ran.json()["tenant"] == "acme" and ran.json()["meta"] == {"from": "cron"}
    yard.wait(ran.json()["id"])
    got = yard.call("acme-viewer", "GET", f"/api/v1/schedules/{name}").json()
    assert got["last_task"]["id"] == ran.json()["id"]
    _same_ticks_moved_on(data["next_five"], got["next_five"])
    paused = yard.call("acme-admin", "PATCH", f"/api/v1/schedules/{name}",
                       json={"paused": True}).json()
    assert paused["paused"] is True and paused["next_five"] == []
    assert name in [s["name"] for s in yard.call("viewer", "GET", "/api/v1/schedules").json()]
    assert yard.call("acme-admin", "DELETE", f"/api/v1/schedules/{name}").status_code == 204
    assert_problem(yard.call("admin", "GET", f"/api/v1/schedules/{name}"), 404, "name")
    assert yard.task(ran.json()["id"])["schedule"] == name  # the tasks it fired stay


def _same_ticks_moved_on(earlier: list[str], later: list[str]) -> None:
    """``later`` (asked for after ``earlier``) is the same run of 5-minute ticks, moved
    on by those that passed between the two calls: on a loaded machine the calls can be
    minutes apart, and a tick can fall between them."""
    from datetime import datetime

    for ticks in (earlier, later):
        times = [datetime.fromisoformat(t) for t in ticks]
        assert len(times) == 5 and all(t.minute % 5 == 0 and t.second == 0 for t in times)
        assert times == sorted(set(times)), ticks
    passed = sum(1 for tick in earlier if tick < later[0])  # ISO in UTC: sorts as time
    assert later[:5 - passed] == earlier[passed:], (earlier, later)


def test_tenants(yard: Deployment) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    made = yard.call("admin", "POST", "/api/v1/tenants", json={"name": name, "parallel": 3})
    assert made.status_code == 201 and made.json()["parallel"] == 3
    assert_problem(yard.call("admin", "POST", "/api/v1/tenants", json={"name": name}), 409)
    off = yard.call("admin", "PATCH", f"/api/v1/tenants/{name}", json={"enabled": False})
    assert off.json()["enabled"] is False
    task = yard.submit("admin", argv=["true"], tenant=name)
    assert "tenant_disabled" in [w["code"] for w in yard.task(task["id"])["waiting"]]
    on = yard.call("admin", "PATCH", f"/api/v1/tenants/{name}",
                   json={"enabled": True, "parallel": None})
    assert (on.json()["enabled"], on.json()["parallel"]) == (True, None)
    assert yard.wait(task["id"])["tenant"] == name
    listed = {t["name"]: t for t in yard.call("viewer", "GET", "/api/v1/tenants").json()}
    assert {"default", "acme", "rival", name} <= set(listed)


def test_servers_metrics_and_health(yard: Deployment) -> None:
    servers = yard.call("viewer", "GET", "/api/v1/servers").json()
    assert [s["alive"] for s in servers] == [True] and servers[0]["fenced"] is False
    assert servers[0]["slots"] == 8
    yard.wait(yard.submit("operator", argv=["true"], queue="metered")["id"])
    metrics = yard.call("viewer", "GET", "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'taskyard_tasks{queue="metered",status="succeeded",tenant="default"} 1.0' in (
        metrics.text)
    assert "taskyard_servers_alive 1.0" in metrics.text
    health = httpx.get(yard.base + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert "postgres" not in health.text or "@" not in health.text  # no credentials


def test_tokens(yard: Deployment) -> None:
    made = yard.call("admin", "POST", "/api/v1/tokens", json={
        "role": "operator", "tenant": "acme", "name": f"ci-{uuid.uuid4().hex[:6]}",
        "expires": "1h"})
    assert made.status_code == 201 and made.json()["token"].startswith("tyk_")
    secret, token_id = made.json()["token"], made.json()["id"]
    listed = yard.call("admin", "GET", "/api/v1/tokens")
    assert secret not in listed.text and "hash" not in listed.text
    mine = next(t for t in listed.json() if t["id"] == token_id)
    assert (mine["role"], mine["tenant"], mine["revoked_at"]) == ("operator", "acme", None)
    use = httpx.post(yard.base + "/api/v1/tasks", json={"argv": ["true"]},
                     headers={"Authorization": f"Bearer {secret}"})
    assert use.status_code == 201 and use.json()["tenant"] == "acme"
    revoked = yard.call("admin", "DELETE", f"/api/v1/tokens/{token_id}").json()
    assert revoked["revoked_at"] is not None
    assert_problem(httpx.get(yard.base + "/api/v1/tasks",
                             headers={"Authorization": f"Bearer {secret}"}), 401)
    assert_problem(yard.call("admin", "DELETE", "/api/v1/tokens/999999"), 404, "token")


def test_the_openapi_document_docs_and_security_headers(yard: Deployment) -> None:
    schema = yard.call("viewer", "GET", "/api/v1/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    submit = schema["paths"]["/api/v1/tasks"]["post"]
    assert {"201", "200", "default"} <= set(submit["responses"])
    assert "application/problem+json" in submit["responses"]["default"]["content"]
    assert "Idempotency-Key".lower() in [p["name"].lower() for p in submit["parameters"]]
    docs = yard.call("viewer", "GET", "/api/v1/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]
    for answer in (docs, yard.call("viewer", "GET", "/api/v1/tasks"),
                   yard.call(None, "GET", "/api/v1/tasks")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in answer.headers["content-security-policy"]


def test_the_api_under_a_prefix(yard: Deployment) -> None:
    with web_process(yard.home, "--root-path", "/ty", env=clean_env()) as base:
        assert base.endswith("/ty")
        auth = {"Authorization": f"Bearer {yard.tokens['viewer']}"}
        assert httpx.get(base + "/api/v1/tasks", headers=auth).status_code == 200
        schema = httpx.get(base + "/api/v1/openapi.json", headers=auth).json()
        assert schema["servers"] == [{"url": "/ty"}]
        assert_problem(httpx.get(base + "/api/v1/tasks"), 401)
