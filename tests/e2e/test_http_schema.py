"""Schemathesis against the API's own OpenAPI document, on both stores: for every
operation, requests made from the schema (valid ones, and invalid ones) never get a
5xx, and every answer matches the schema (its status, content type and body: errors
are problem+json). Bounded and deterministic: a few examples an operation, derived
from a fixed seed, so that it takes seconds and never flakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.httpyard import ROUTES, STORES, Deployment, deployment

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
#: (token, kind of data): valid data as a global admin and as a tenant's admin (whose
#: filters and checks take other paths), invalid data as a global admin
RUNS = [("admin", POSITIVE), ("acme-admin", POSITIVE), ("admin", NEGATIVE)]
#: The live stream of a task that never ends does not end either: output tests cover it.
FUZZED = [r for r in ROUTES if r.path.startswith(("/api/v1/tasks", "/api/v1/queues",
                                                  "/api/v1/schedules", "/api/v1/tenants",
                                                  "/api/v1/servers", "/api/v1/tokens",
                                                  "/api/v1/stats", "/metrics"))
          and not r.path.endswith("/live")] + [ROUTES[0]._replace(path="/health")]
EXAMPLES = 8


class Fuzzed:
    def __init__(self, yard: Deployment, schema: Any, spare_token: int) -> None:
        self.yard, self.schema, self.spare_token = yard, schema, spare_token


@pytest.fixture(scope="module", params=STORES)
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Fuzzed]:
    """A deployment without a task server (tasks stay queued: no control waits for one,
    no wait blocks), some tasks and a schedule to hit, and the API's schema."""
    with deployment(request.param, tmp_path_factory.mktemp(request.param),
                    server=False) as yard:
        for i in range(3):
            yard.submit(argv=["echo", str(i)], meta={"i": i})
        yard.submit(argv=["cat"], stdin_open=True)
        assert yard.call("admin", "POST", "/api/v1/schedules", json={
            "name": "nightly", "expr": "0 3 * * *", "tz": "UTC",
            "task": {"argv": ["true"]}}).status_code == 201
        spare, _ = yard.add_token("viewer")
        document = yard.call("admin", "GET", "/api/v1/openapi.json").json()
        yield Fuzzed(yard, schemathesis.openapi.from_dict(document), spare)


@pytest.mark.parametrize(("who", "mode"), RUNS, ids=[f"{w}-{m.value}" for w, m in RUNS])
@pytest.mark.parametrize("route", FUZZED, ids=[f"{r.method} {r.path}" for r in FUZZED])
def test_no_5xx_and_answers_match_the_schema(fuzzed: Fuzzed, route: Any, who: str,
                                             mode: schemathesis.GenerationMode) -> None:
    operation = fuzzed.schema[route.path][route.method]
    fixed: dict[str, Any] = {}
    if route.path.endswith("/tokens/{token_id}"):  # not the token the fuzzer holds
        fixed["path_parameters"] = {"token_id": fuzzed.spare_token}
    if route.path.endswith("/wait"):  # a queued task's wait would last its timeout
        fixed["query"] = {"timeout": 0}
    headers = {"Authorization": f"Bearer {fuzzed.yard.tokens[who]}"}
    base = fuzzed.yard.base
    strategy = operation.as_strategy(mode, **fixed)
    if mode is NEGATIVE and not _negatable(operation, fixed):
        pytest.skip("nothing to make invalid: no parameters and no body")

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)

    check()


def _negatable(operation: Any, fixed: dict[str, Any]) -> bool:
    definition = operation.definition.raw
    names = {p.get("name") for p in definition.get("parameters", [])}
    names -= set(fixed.get("path_parameters", {})) | set(fixed.get("query", {}))
    return bool(names or definition.get("requestBody"))
