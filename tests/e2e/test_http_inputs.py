"""Bad input over HTTP is a 4xx problem+json (RFC 9457: status, title, detail) naming
the field, never a 500 nor a 503, on both stores: wrong types, unknown fields, NUL
characters, bodies over the limit (413 before parsing), JSON nested too deep, bad
cursors, bad signals, ids like ../../etc/passwd or 4 KB long, NaN, ints past 2^63."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.httpyard import STORES, Deployment, assert_problem, deployment

J = {"Content-Type": "application/json"}
BIG = str(2**70)
TASKS = "/api/v1/tasks"


def raw(text: str) -> dict[str, Any]:
    """A JSON body as written (NaN, Infinity and huge ints are JSON to Python)."""
    return {"content": text.encode(), "headers": J}


def submit(**body: Any) -> dict[str, Any]:
    return {"json": {"argv": ["true"], **body}}


#: (method, path ({id}: a queued task's id), httpx arguments, status, field)
BAD: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", TASKS, {"json": {"argv": "echo hi"}}, 422, "argv"),
    ("POST", TASKS, {"json": {"argv": ["echo", 5]}}, 422, "argv.1"),
    ("POST", TASKS, {"json": {"argv": None}}, 422, "argv"),
    ("POST", TASKS, {"json": {}}, 422, "argv"),
    ("POST", TASKS, submit(bogus=1), 422, "bogus"),
    ("POST", TASKS, submit(limits={"memory": "12Q"}), 422, "limits.memory"),
    ("POST", TASKS, submit(limits={"cpu": -1}), 422, "limits.cpu"),
    ("POST", TASKS, submit(limits={"files": 0}), 422, "limits.files"),
    ("POST", TASKS, submit(limits={"disk": 1}), 422, "limits.disk"),
    ("POST", TASKS, submit(rate_limit="api=0/1m"), 422, "rate_limit"),
    ("POST", TASKS, submit(rate_limit="api=5/0s"), 422, "rate_limit"),
    ("POST", TASKS, submit(rate_limit="api"), 422, "rate_limit"),
    ("POST", TASKS, submit(rate_limit=5), 422, "rate_limit"),
    ("POST", TASKS, {"json": {"argv": ["a\0b"]}}, 422, "argv[0]"),
    ("POST", TASKS, {"json": {"argv": [""]}}, 422, "argv"),
    ("POST", TASKS, submit(argv=None, function="add", kwargs=[1]), 422, "kwargs"),
    ("POST", TASKS, submit(kwargs={"a": 1}), 422, "kwargs"),
    ("POST", TASKS, submit(function="add"), 422, "argv"),
    ("POST", TASKS, submit(env={"A=B": "x"}), 422, "env"),
    ("POST", TASKS, submit(env={"A": "x\0"}), 422, "env"),
    ("POST", TASKS, submit(env={"A": 1}), 422, "env.A"),
    ("POST", TASKS, submit(priority=True), 422, "priority"),
    ("POST", TASKS, submit(priority="1"), 422, "priority"),
    ("POST", TASKS, submit(priority=1.5), 422, "priority"),
    ("POST", TASKS, raw('{"argv": ["true"], "priority": NaN}'), 422, "priority"),
    ("POST", TASKS, raw(f'{{"argv": ["true"], "priority": {BIG}}}'), 422, "priority"),
    ("POST", TASKS, raw('{"argv": ["true"], "meta": {"x": NaN}}'), 422, "meta"),
    ("POST", TASKS, raw('{"argv": ["true"], "meta": {"x": -Infinity}}'), 422, "meta"),
    ("POST", TASKS, raw(f'{{"argv": ["true"], "meta": {{"x": {BIG}}}}}'), 422, "meta"),
    ("POST", TASKS, submit(meta={"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
        [[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
        }), 422, "meta"),
    ("POST", TASKS, submit(meta=[1]), 422, "meta"),
    ("POST", TASKS, raw('{"argv": ["true"], "timeout": NaN}'), 422, "timeout"),
    ("POST", TASKS, submit(timeout=-1), 422, "timeout"),
    ("POST", TASKS, raw('{"argv": ["true"], "retry_delay": Infinity}'), 422, "retry_delay"),
    ("POST", TASKS, submit(retries=2**70), 422, "retries"),
    ("POST", TASKS, submit(retries=-1), 422, "retries"),
    ("POST", TASKS, submit(retry_on=["bogus"]), 422, "retry_on"),
    ("POST", TASKS, submit(backoff="linear"), 422, "backoff"),
    ("POST", TASKS, submit(delay="soon"), 422, "delay"),
    ("POST", TASKS, submit(delay=-1), 422, "delay"),
    ("POST", TASKS, submit(at="tomorrow"), 422, "at"),
    ("POST", TASKS, submit(at="2026-01-01T00:00:00Z", delay=5), 422, "at"),
    ("POST", TASKS, submit(after=[2**70]), 422, "after.0"),
    ("POST", TASKS, submit(after=[0]), 422, "after.0"),
    ("POST", TASKS, submit(after=["1"]), 422, "after.0"),
    ("POST", TASKS, submit(after=[10**12]), 404, "after"),
    ("POST", TASKS, submit(tenant="nosuch"), 404, "tenant"),
    ("POST", TASKS, submit(queue=".."), 422, "queue"),
    ("POST", TASKS, submit(queue="a\nb"), 422, "queue"),
    ("POST", TASKS, submit(stdin_base64="!!!"), 422, "stdin_base64"),
    ("POST", TASKS, submit(stdin="x", stdin_open=True), 422, "stdin"),
    ("POST", TASKS, submit(name="x" * 1000), 422, "name"),
    ("POST", TASKS, submit(name="a\nb"), 422, "name"),
    ("POST", TASKS, submit(queue=""), 422, "queue"),
    ("POST", TASKS, submit(unique="\0"), 422, "unique"),
    ("POST", TASKS, raw('{"argv": ["true"], "mutex": "\\ud800"}'), 422, "mutex"),
    ("POST", TASKS, submit(cwd="relative/dir"), 422, "cwd"),
    ("POST", TASKS, raw('{"argv": ["true"'), 400, "body"),
    ("POST", TASKS, raw("not json"), 400, "body"),
    ("POST", TASKS, raw('{"argv": ' + "[" * 100_000 + "]" * 100_000 + "}"), 400, "body"),
    ("POST", TASKS, raw("[1]"), 422, "body"),
    ("POST", TASKS, {"content": b"\xff\xfe", "headers": J}, 400, "body"),
    ("POST", TASKS, {**submit(), "headers": {"Idempotency-Key": "k" * 300}}, 422,
     "Idempotency-Key"),
    ("GET", TASKS + "?limit=0", {}, 422, "limit"),
    ("GET", TASKS + "?limit=abc", {}, 422, "limit"),
    ("GET", TASKS + "?limit=" + BIG, {}, 422, "limit"),
    ("GET", TASKS + "?status=bogus", {}, 422, "status"),
    ("GET", TASKS + "/counts?status=queued,bogus", {}, 422, "status"),
    ("GET", TASKS + "?cursor=zzz", {}, 422, "cursor"),
    ("GET", TASKS + "?kind=script", {}, 422, "kind"),
    ("GET", TASKS + "?since=soon", {}, 422, "since"),
    ("GET", TASKS + "/counts?until=2026-13-01", {}, 422, "until"),
    ("GET", TASKS + "?cursor=" + "YmVmb3JlOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", {}, 422, "cursor"),
    ("GET", TASKS + "?cursor=" + "a" * 5000, {}, 422, "cursor"),
    ("GET", TASKS + "?meta.a..b=1", {}, 422, "meta.a..b"),
    ("GET", TASKS + "?q=%00", {}, 422, "q"),
    ("GET", TASKS + "/counts?queue=%00", {}, 422, "queue"),
    ("GET", TASKS + "?meta.k=%00", {}, 422, "meta.k"),
    ("GET", TASKS + "?name=" + "n" * 2000, {}, 422, "name"),
    ("GET", TASKS + "/abc", {}, 422, "task_id"),
    ("GET", TASKS + "/1.5", {}, 422, "task_id"),
    ("GET", TASKS + "/" + BIG, {}, 422, "task_id"),
    ("GET", TASKS + "/" + "9" * 4096, {}, 422, "task_id"),
    ("GET", TASKS + "/0", {}, 422, "task_id"),
    ("GET", TASKS + "/-1/output/stdout", {}, 422, "task_id"),
    ("GET", TASKS + "/..%2F..%2Fetc%2Fpasswd", {}, 404, "path"),
    ("GET", TASKS + "/%2e%2e%2f%2e%2e%2fetc%2fpasswd/output/stdout", {}, 404, "path"),
    ("DELETE", TASKS + "/" + BIG, {}, 422, "task_id"),
    ("GET", TASKS + "/{id}/wait?timeout=NaN", {}, 422, "timeout"),
    ("GET", TASKS + "/{id}/wait?timeout=301", {}, 422, "timeout"),
    ("GET", TASKS + "/{id}/output/bogus", {}, 422, "stream"),
    ("GET", TASKS + "/{id}/output/stdout?offset=-1", {}, 422, "offset"),
    ("GET", TASKS + "/{id}/output/stdout?limit=" + BIG, {}, 422, "limit"),
    ("GET", TASKS + "/{id}/output/stdout?attempt=0", {}, 422, "attempt"),
    ("GET", TASKS + "/{id}/output/stdout?attempt=" + BIG, {}, 422, "attempt"),
    ("GET", TASKS + "/{id}/output/stdout", {"headers": {"Range": "bytes=x-y"}}, 422, "Range"),
    ("GET", TASKS + "/{id}/output/stdout/live", {"headers": {"Last-Event-ID": "x"}}, 422,
     "Last-Event-ID"),
    ("GET", TASKS + "/{id}/output/stdout/live", {"headers": {"Last-Event-ID": "9" * 19}}, 422,
     "Last-Event-ID"),
    ("GET", TASKS + "/{id}/output/stdout/live?attempt=7", {}, 422, "attempt"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": "SIGFOO"}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": 0}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": 65}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": -9}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": 2**70}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": "STOP"}}, 422, "signal"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": "KILL", "graceful": True}}, 422,
     "graceful"),
    ("POST", TASKS + "/{id}/kill", {"json": {"signal": 9.5}}, 422, "signal"),
    ("POST", TASKS + "/{id}/signal", {"json": {"name": ""}}, 422, "name"),
    ("POST", TASKS + "/{id}/signal", {"json": {"data": 1}}, 422, "name"),
    ("PATCH", TASKS + "/{id}/meta", {"json": [1]}, 422, "body"),
    ("PATCH", TASKS + "/{id}/meta", raw('{"x": NaN}'), 422, "meta"),
    ("PATCH", TASKS + "/{id}/config", raw(f'{{"x": {BIG}}}'), 422, "config"),
    ("POST", TASKS + "/bulk", {"json": {"action": "explode"}}, 422, "action"),
    ("POST", TASKS + "/bulk", {"json": {"action": "kill", "snapshot": "nope"}}, 404, "snapshot"),
    ("POST", TASKS + "/bulk", {"json": {"action": "kill", "snapshot": "a\0"}}, 404, "snapshot"),
    ("POST", TASKS + "/bulk", {"json": {"action": "kill", "filter": {"status": ["x"]}}}, 422,
     "status"),
    ("POST", TASKS + "/bulk", {"json": {"action": "kill", "filter": {"q": "\0"}}}, 422, "q"),
    ("POST", TASKS + "/bulk", {"json": {"action": "kill", "filter": {"meta": {"k": "\0"}}}},
     422, "meta.k"),
    ("PATCH", "/api/v1/queues/%00", {"json": {"paused": True}}, 422, "name"),
    ("PATCH", "/api/v1/queues/q", {"json": {"parallel": 0}}, 422, "parallel"),
    ("PATCH", "/api/v1/queues/q", {"json": {"parallel": 2**70}}, 422, "parallel"),
    ("PATCH", "/api/v1/queues/q", {"json": {"paused": "yes"}}, 422, "paused"),
    ("PATCH", "/api/v1/queues/q", {"json": {"rate": "0/1m"}}, 422, "rate"),
    ("PATCH", "/api/v1/queues/q", {"json": {"rate": "5/0s"}}, 422, "rate"),
    ("GET", "/api/v1/schedules/%00", {}, 422, "name"),
    ("GET", "/api/v1/schedules/" + "s" * 4096, {}, 404, "name"),
    ("PATCH", "/api/v1/tenants/%00", {"json": {"enabled": True}}, 422, "name"),
    ("POST", "/api/v1/tenants", {"json": {"name": ""}}, 422, "name"),
    ("POST", "/api/v1/tenants", {"json": {"name": "t", "parallel": 0}}, 422, "parallel"),
    ("POST", "/api/v1/tenants", {"json": {"name": "t", "run_as": "bad user"}}, 422, "run_as"),
    ("POST", "/api/v1/tokens", {"json": {"role": "root"}}, 422, "role"),
    ("POST", "/api/v1/tokens", {"json": {"role": "viewer", "expires": "-1s"}}, 422, "expires"),
    ("POST", "/api/v1/tokens", {"json": {"role": "viewer", "tenant": "nosuch"}}, 404, "tenant"),
    ("DELETE", "/api/v1/tokens/" + BIG, {}, 422, "token_id"),
    ("DELETE", "/api/v1/tokens/abc", {}, 422, "token_id"),
]


def schedule(**extra: Any) -> dict[str, Any]:
    return {"json": {"name": "s", "expr": "* * * * *", "tz": "UTC",
                     "task": {"argv": ["true"]}, **extra}}


for _expr in ("61 * * * *", "* * *", "*/0 * * * *", "5-1 * * * *", "1" * 10_000,
              "١ * * * *", "0 0 31 2 *", "* * * * * * *", "\0"):
    BAD.append(("POST", "/api/v1/schedules", schedule(expr=_expr), 422, "expr"))
for _tz in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "\0"):
    BAD.append(("POST", "/api/v1/schedules", schedule(tz=_tz), 422, "tz"))
BAD += [
    ("POST", "/api/v1/schedules", schedule(catch_up="some"), 422, "catch_up"),
    ("POST", "/api/v1/schedules", schedule(name="a\0"), 422, "name"),
    ("POST", "/api/v1/schedules", schedule(max_lag=-1), 422, "max_lag"),
    ("POST", "/api/v1/schedules", schedule(task={"argv": ["true"], "delay": 5}), 422, "spec"),
    ("POST", "/api/v1/schedules", schedule(task={"argv": 1}), 422, "task.argv"),
]


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    """No task server: every task stays queued, as the checks expect."""
    with deployment(request.param, tmp_path_factory.mktemp(request.param),
                    server=False) as d:
        yield d


@pytest.fixture(scope="module")
def queued(yard: Deployment) -> int:
    return int(yard.submit(argv=["true"])["id"])


@pytest.mark.parametrize(("method", "path", "kw", "status", "field"), BAD,
                         ids=[f"{m} {p[:60]} {f}" for m, p, _, _, f in BAD])
def test_bad_input_is_a_problem_naming_the_field(
        yard: Deployment, queued: int, method: str, path: str, kw: dict[str, Any],
        status: int, field: str) -> None:
    before = yard.call("admin", "GET", "/api/v1/tasks/counts").json()["total"]
    path = path.replace("{id}", str(queued))
    answer = yard.call("admin", method, path, **kw)
    assert_problem(answer, status, field)
    assert yard.call("admin", "GET", "/api/v1/tasks/counts").json()["total"] == before


def test_bodies_over_the_limit_are_refused_before_they_are_read(yard: Deployment) -> None:
    big = b'{"argv": ["true"], "meta": {"x": "' + b"a" * (3 * 1024 * 1024) + b'"}}'
    assert_problem(yard.call("admin", "POST", TASKS, content=big, headers=J), 413, "body")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield big[:1024]
        for start in range(1024, len(big), 256 * 1024):
            yield big[start:start + 256 * 1024]

    assert_problem(yard.call("admin", "POST", TASKS, content=chunks(), headers=J), 413,
                   "body")


def test_a_request_the_router_cannot_match_is_a_problem(yard: Deployment) -> None:
    assert_problem(yard.call("admin", "PUT", f"{TASKS}/1"), 405)
    assert_problem(yard.call("admin", "GET", "/api/v1/nothing"), 404, "path")
    assert_problem(yard.call("admin", "POST", TASKS, content=b'{"argv": ["true"]}',
                             headers={"Content-Type": "text/plain"}), 422, "body")


def test_argv_is_kept_literally(yard: Deployment) -> None:
    """No shell: what looks like shell syntax is one argument, kept as given."""
    argv = ["echo", "$(id); rm -rf /", "`id`", "a b", "ü", "\t"]
    task = yard.submit(argv=argv)
    assert task["argv"] == argv
    page = yard.call("admin", "GET", TASKS, params={"q": "rm -rf"}).json()
    assert [t["id"] for t in page["items"]] == [task["id"]]
    yard.call("admin", "DELETE", f"{TASKS}/{task['id']}", params={"force": True})


def test_a_metadata_filter_of_null_a_list_or_an_object_is_refused(yard: Deployment) -> None:
    for value in ("null", "[1]", "{}"):
        for path in ("/api/v1/tasks", "/api/v1/tasks/counts"):
            answer = yard.call("viewer", "GET", path, params={"meta.x": value})
            assert answer.status_code == 422, (path, value, answer.text)
            assert answer.json()["field"] == "meta.x"
    answer = yard.call("viewer", "GET", "/api/v1/tasks", params={"meta.n": "3"})
    assert answer.status_code == 200


def test_an_output_tail_over_the_servers_largest_is_refused(yard: Deployment) -> None:
    answer = yard.call("operator", "POST", "/api/v1/tasks",
                       json={"argv": ["true"], "output_tail": "2G"})
    assert answer.status_code == 422 and answer.json()["field"] == "output_tail", answer.text
