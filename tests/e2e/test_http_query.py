"""Query strings over real HTTP: a parameter no route reads is a 422 naming it, on
every route of the API (a misspelt filter listed every task); an empty filter is a
422 naming it, as in the CLI and the Python API (test_ls.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.httpyard import ROUTES, Deployment, assert_problem, deployment

TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module")
def yard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment("sqlite", tmp_path_factory.mktemp("query")) as d:
        yield d


def test_a_misspelt_filter_is_named(yard: Deployment) -> None:
    yard.submit(argv=["true"], name="listed")
    answer = yard.call("viewer", "GET", TASKS, params={"stauts": "failed"})
    assert_problem(answer, 422, "stauts")
    assert "unknown query parameter 'stauts'" in answer.json()["detail"]
    assert "status" in answer.json()["detail"]  # what the route does take
    assert_problem(yard.call("viewer", "GET", TASKS + "/counts", params={"qeue": "a"}), 422,
                   "qeue")
    # what the routes read still works: filters, meta.KEY, pages
    answer = yard.call("viewer", "GET", TASKS, params={
        "status": "queued,succeeded", "meta.who": "x", "limit": 5, "name": "listed"})
    assert answer.status_code == 200, answer.text
    answer = yard.call("viewer", "GET", TASKS + "/counts", params={"meta.a.b": "1"})
    assert answer.status_code == 200, answer.text
    # the token goes first: without one, a 401 whatever the query
    assert_problem(yard.call(None, "GET", TASKS, params={"stauts": "x"}), 401)


def test_every_route_refuses_a_parameter_it_does_not_read(yard: Deployment) -> None:
    task_id = yard.submit(argv=["echo", "hi"])["id"]
    yard.wait(task_id)
    for route in (r for r in ROUTES if r.path.startswith("/api/")):  # /metrics: scrapers'
        url, kw = route.request(task_id=task_id, name="default", token_id=10**9, tag="q")
        params = {**kw.pop("params", {}), "bogus": "1"}
        answer = yard.call("admin", route.method, url, params=params, **kw)
        assert_problem(answer, 422, "bogus")
    assert yard.task(task_id)["meta"] == {}  # nothing was done by the refused calls


def test_the_panels_own_reads_of_the_api_still_work(yard: Deployment) -> None:
    task_id = yard.submit(argv=["echo", "hi"])["id"]
    yard.wait(task_id)
    out = f"{TASKS}/{task_id}/output/stdout"
    assert yard.call("viewer", "GET", out, params={"attempt": 1, "limit": 0}).status_code == 200
    with yard.client("viewer").stream("GET", out + "/live",
                                      params={"attempt": 1, "offset": 0}) as live:
        assert live.status_code == 200
    with yard.client("viewer").stream("GET", f"{TASKS}/{task_id}/messages/live",
                                      params={"attempt": 1, "since": 0}) as live:
        assert live.status_code == 200


@pytest.mark.parametrize("param", ["queue", "tenant", "name", "q", "kind", "since", "until",
                                   "status"])
@pytest.mark.parametrize("who", ["viewer", "acme-viewer"])
def test_an_empty_filter_is_named(yard: Deployment, param: str, who: str) -> None:
    for path in (TASKS, TASKS + "/counts"):
        answer = yard.call(who, "GET", path, params={param: ""})
        assert_problem(answer, 422, param)
        assert "is empty" in answer.json()["detail"]


def test_an_empty_bulk_filter_is_named_not_everything(yard: Deployment) -> None:
    kept = yard.submit(argv=["sleep", "60"], name="kept")
    for field in ("name", "queue", "q", "tenant"):
        answer = yard.call("operator", "POST", TASKS + "/bulk", json={
            "action": "delete", "filter": {field: ""}})
        assert_problem(answer, 422, field)
    assert yard.task(kept["id"])["status"] in ("queued", "running")
    answer = yard.call("viewer", "GET", TASKS, params={"meta.": "x"})
    assert answer.status_code == 422, answer.text
    assert yard.call("viewer", "GET", TASKS, params={"meta.who": ""}).status_code == 200
