"""GET /api/v1/stats over real HTTP, on both stores: the numbers of tasks that ran, a
queue filter, a tenant's token seeing its own tenant only, and bad input as a 422
problem naming the field."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.e2e.httpyard import STORES, Deployment, assert_problem, deployment


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def stats(yard: Deployment, who: str, **params: str) -> dict[str, Any]:
    answer = yard.call(who, "GET", "/api/v1/stats", params=params)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_stats_by_queue_and_tenant(yard: Deployment) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    ran = [yard.submit("acme-operator", argv=["true"], queue=queue),
           yard.submit("acme-operator", argv=["sh", "-c", "exit 4"], queue=queue),
           yard.submit("rival-operator", argv=["true"], queue=queue)]
    for task in ran:
        yard.wait(task["id"])
    everyone = stats(yard, "viewer", queue=queue)
    assert everyone["queue"] == queue and everyone["tenant"] is None
    assert (everyone["submitted"], everyone["started"], everyone["finished"]) == (3, 3, 3)
    assert everyone["ended"] == {"succeeded": 2, "failed": 1, "stopped": 0}
    assert everyone["failures"] == {"exit": 1} and everyone["tasks"]["succeeded"] == 2
    assert set(everyone["tenants"]) == {"acme", "rival"} and set(everyone["queues"]) == {queue}
    assert everyone["wait"]["count"] == 3 and everyone["run"]["p95"] is not None
    assert len(everyone["per_minute"]["finished"]) == 60
    acme = stats(yard, "acme-viewer", queue=queue, since="10m")
    assert acme["tenant"] == "acme" and set(acme["tenants"]) == {"acme"}
    assert (acme["submitted"], acme["failures"]) == (2, {"exit": 1})
    assert len(acme["per_minute"]["submitted"]) == 10
    other = stats(yard, "acme-viewer", queue=queue, tenant="rival")
    assert other["tenant"] == "rival" and other["submitted"] == 0
    assert other["tenants"] == {} and other["queues"] == {} and other["tasks"]["succeeded"] == 0
    rival = stats(yard, "admin", queue=queue, tenant="rival")
    assert rival["submitted"] == 1 and set(rival["tenants"]) == {"rival"}


@contextmanager
def panel(yard: Deployment, who: str) -> Iterator[httpx.Client]:
    """A panel session of ``who``'s token (a cookie), logged in as the login form does."""
    with httpx.Client(base_url=yard.base, timeout=60) as client:
        answer = client.post("/login", data={"token": yard.tokens[who]},
                             headers={"Origin": yard.base})
        assert answer.status_code == 303, answer.text
        yield client


def test_the_panel_page(yard: Deployment) -> None:
    queue = f"pq-{uuid.uuid4().hex[:8]}"
    for who, argv in (("acme-operator", ["sh", "-c", "exit 5"]), ("rival-operator", ["true"])):
        yard.wait(yard.submit(who, argv=argv, queue=queue)["id"])
    with panel(yard, "viewer") as client:
        page = client.get("/stats", params={"queue": queue, "since": "10m"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert f"Stats · queue {queue}" in page.text and "exit 1" in page.text
        assert ">acme</a>" in page.text and ">rival</a>" in page.text
        assert client.get("/stats", params={"since": "soon"}).status_code == 422
    with panel(yard, "acme-viewer") as client:
        page = client.get("/stats", params={"queue": queue})
        assert page.status_code == 200 and ">acme</a>" in page.text
        assert ">rival</a>" not in page.text


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "0s"}, "since"), ({"since": "1y"}, "since"), ({"since": "101d"}, "since"),
    ({"since": "x" * 41}, "since"), ({"queue": ""}, "queue"), ({"tenant": "a\tb"}, "tenant"),
])
def test_bad_input_is_a_422_naming_the_field(yard: Deployment, params: dict[str, str],
                                              field: str) -> None:
    assert_problem(yard.call("viewer", "GET", "/api/v1/stats", params=params), 422, field)
