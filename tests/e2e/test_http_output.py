"""A task's output over HTTP, on both stores: raw bytes by offset and limit with the
Taskyard-Total, -Next-Offset and -Dropped headers; Range requests (206); 10 MiB of
/dev/urandom round-trips exactly (sha256), raw and over the live stream; the live
stream (SSE) whose event ids are byte offsets, resumed exactly with Last-Event-ID,
ending with an ``end`` event once the attempt ended; stdin written over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskyard.testing import wait_for
from tests.e2e.httpyard import HEAD_MIB, STORES, TAIL_MIB, Deployment, assert_problem, deployment

MIB = 1024 * 1024
TEN_MIB = 10 * MIB


@pytest.fixture(scope="module", params=STORES)
def yard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Deployment]:
    with deployment(request.param, tmp_path_factory.mktemp(request.param)) as d:
        yield d


def url(task_id: int, stream: str = "stdout", live: bool = False) -> str:
    return f"/api/v1/tasks/{task_id}/output/{stream}" + ("/live" if live else "")


def read_all(yard: Deployment, task_id: int, stream: str = "stdout",
             **params: Any) -> tuple[bytes, list[dict[str, str]]]:
    """Every kept byte, page by page (Taskyard-Next-Offset), and each page's headers."""
    data, pages, offset = b"", [], 0
    while True:
        answer = yard.call("viewer", "GET", url(task_id, stream),
                           params={**params, "offset": offset})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/octet-stream"
        data += answer.content
        pages.append(dict(answer.headers))
        offset = int(answer.headers["taskyard-next-offset"])
        if offset >= int(answer.headers["taskyard-total"]):
            return data, pages


def events(yard: Deployment, task_id: int, *, stream: str = "stdout", who: str = "viewer",
           last_id: str | None = None, stop: int | None = None,
           found: list[dict[str, Any]] | None = None, **params: Any) -> list[dict[str, Any]]:
    """The live stream's events (kind, id, data) up to its end, or ``stop`` events (into
    ``found`` as they come, when given)."""
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    found = [] if found is None else found
    with yard.client(who).stream("GET", url(task_id, stream, live=True), params=params,
                                 headers=headers, timeout=60) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in answer.iter_lines():
            if line.startswith(("event:", "id:", "data:")):
                key, _, value = line.partition(":")
                event[key] = value.strip()
            elif line == "" and "event" in event:
                event["data"] = json.loads(event["data"])
                found.append(event)
                if event["event"] == "end" or len(found) == stop:
                    return found
                event = {}
    raise AssertionError(f"the stream closed without an end event: {found}")


def joined(found: list[dict[str, Any]], start: int = 0) -> bytes:
    """The bytes of output events, checking each id is the offset after its data and
    each starts where the last ended."""
    data, offset = b"", start
    for event in found:
        if event["event"] != "output":
            continue
        chunk = base64.b64decode(event["data"]["data"])
        assert event["data"]["offset"] == offset, (event, offset)
        offset += len(chunk)
        assert int(event["id"]) == offset
        data += chunk
    return data


def test_ten_mib_of_urandom_round_trips_exactly(yard: Deployment, tmp_path: Path) -> None:
    source = tmp_path / "random.bin"
    task = yard.submit(argv=["sh", "-c", f'head -c {TEN_MIB} /dev/urandom > "$0"; cat "$0";'
                             ' sha256sum "$0" >&2', str(source)])
    assert yard.wait(task["id"])["status"] == "succeeded"
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    stderr, _ = read_all(yard, task["id"], "stderr")
    assert stderr.split()[0].decode() == expected
    data, pages = read_all(yard, task["id"])  # 4 MiB a page by default
    assert len(pages) == 3 and hashlib.sha256(data).hexdigest() == expected
    assert all(p["taskyard-total"] == str(TEN_MIB) and "taskyard-dropped" not in p
               for p in pages)
    whole = yard.call("viewer", "GET", url(task["id"]), params={"limit": 32 * MIB})
    assert whole.headers["taskyard-finished"] == "1"
    assert hashlib.sha256(whole.content).hexdigest() == expected
    found = events(yard, task["id"])
    assert hashlib.sha256(joined(found)).hexdigest() == expected
    assert found[-1]["event"] == "end" and found[-1]["id"] == str(TEN_MIB)
    assert found[-1]["data"] == {"total": TEN_MIB, "status": "succeeded"}
    # ranges: bytes=A-B, bytes=A-, bytes=-N, the last byte; past the end is a 416
    raw = source.read_bytes()
    for header, first, last in (("bytes=0-99", 0, 99), ("bytes=5000000-5000009", 5000000,
                                5000009), (f"bytes={TEN_MIB - 10}-", TEN_MIB - 10,
                                TEN_MIB - 1), ("bytes=-7", TEN_MIB - 7, TEN_MIB - 1),
                                (f"bytes={TEN_MIB - 1}-{TEN_MIB + 50}", TEN_MIB - 1,
                                TEN_MIB - 1)):
        part = yard.call("viewer", "GET", url(task["id"]), headers={"Range": header})
        assert part.status_code == 206, (header, part.text[:200])
        assert part.headers["content-range"] == f"bytes {first}-{last}/{TEN_MIB}"
        assert part.content == raw[first:last + 1]
    beyond = yard.call("viewer", "GET", url(task["id"]), headers={"Range": f"bytes={TEN_MIB}-"})
    assert_problem(beyond, 416)
    assert beyond.headers["content-range"] == f"bytes */{TEN_MIB}"
    assert_problem(yard.call("viewer", "GET", url(task["id"]),
                             headers={"Range": "bytes=9-2"}), 422, "Range")


def test_output_past_the_bound_says_what_was_dropped(yard: Deployment) -> None:
    size = int((HEAD_MIB + TAIL_MIB + 0.5) * MIB)
    task = yard.submit(argv=["sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x"])
    yard.wait(task["id"])
    head, tail = int(HEAD_MIB * MIB), int(TAIL_MIB * MIB)
    data, pages = read_all(yard, task["id"])
    dropped = [p["taskyard-dropped"] for p in pages if "taskyard-dropped" in p]
    assert len(dropped) == 1
    start, end = map(int, dropped[0].split("-"))
    # the head is kept, and the tail in whole chunks: at least its bytes, maybe more
    assert start == head and head < end <= size - tail
    assert data == b"x" * (size - (end - start))
    assert {p["taskyard-total"] for p in pages} == {str(size)}
    found = events(yard, task["id"])
    gap = [e for e in found if e["event"] == "dropped"]
    assert [(g["data"], g["id"]) for g in gap] == [({"from": start, "to": end}, str(end))]
    assert joined(found[:found.index(gap[0])]) + joined(found[found.index(gap[0]):],
                                                       end) == data
    assert found[-1]["event"] == "end" and found[-1]["data"]["total"] == size


def test_the_live_stream_resumes_exactly_at_its_last_event_id(yard: Deployment) -> None:
    task = yard.submit("operator", argv=["cat"], stdin_open=True)
    wait_for(lambda: yard.task(task["id"])["status"] == "running", message="cat runs")
    stdin = f"/api/v1/tasks/{task['id']}/stdin"
    sent = [b"first line\n", b"\x00\xff binary \xfe\n", "déjà vu\n".encode()]
    answer = yard.call("operator", "POST", stdin, content=sent[0])
    assert answer.status_code == 200, answer.text
    first = events(yard, task["id"], stop=1)
    assert joined(first) == sent[0] and first[0]["id"] == str(len(sent[0]))
    for chunk in sent[1:]:  # written while nobody listens
        assert yard.call("operator", "POST", stdin, content=chunk).status_code == 200
    assert yard.call("operator", "POST", stdin, params={"eof": True}).status_code == 200
    rest = events(yard, task["id"], last_id=first[0]["id"])
    assert joined(rest, len(sent[0])) == b"".join(sent[1:])
    total = len(b"".join(sent))
    assert rest[-1] == {"event": "end", "id": str(total),
                        "data": {"total": total, "status": "succeeded"}}
    # from any offset, and from the end: just the end
    again = events(yard, task["id"], last_id="3")
    assert joined(again, 3) == b"".join(sent)[3:]
    assert events(yard, task["id"], last_id=str(total))[0]["event"] == "end"
    assert events(yard, task["id"], offset=total - 2)[0]["data"]["offset"] == total - 2
    assert read_all(yard, task["id"])[0] == b"".join(sent)


def test_attempts_have_their_own_output(yard: Deployment) -> None:
    task = yard.submit(argv=["sh", "-c", 'echo "attempt $TASKYARD_ATTEMPT"; echo oops >&2'])
    yard.wait(task["id"])
    assert yard.call("operator", "POST", f"/api/v1/tasks/{task['id']}/restart").status_code == 200
    wait_for(lambda: yard.task(task["id"])["attempt"] == 2
             and yard.task(task["id"])["status"] == "succeeded", message="attempt 2 ends")
    assert read_all(yard, task["id"])[0] == b"attempt 2\n"
    assert read_all(yard, task["id"], attempt=1)[0] == b"attempt 1\n"
    assert read_all(yard, task["id"], "stderr", attempt=1)[0] == b"oops\n"
    assert joined(events(yard, task["id"], attempt=1)) == b"attempt 1\n"
    saved = yard.call("viewer", "GET", url(task["id"]), params={"download": True, "attempt": 1})
    assert saved.headers["content-disposition"] == (
        f'attachment; filename="task-{task["id"]}-1.stdout.txt"')
    assert_problem(yard.call("viewer", "GET", url(task["id"]), params={"attempt": 3}), 404,
                   "attempt")


def test_a_task_stopped_before_it_started_ends_its_stream(yard: Deployment) -> None:
    task = yard.submit(argv=["true"], delay="1h")
    assert yard.call("operator", "POST", f"/api/v1/tasks/{task['id']}/kill").status_code == 200
    assert events(yard, task["id"]) == [{"event": "end", "id": "0",
                                         "data": {"total": 0, "status": "stopped"}}]
    empty = yard.call("viewer", "GET", url(task["id"]))
    assert empty.content == b"" and empty.headers["taskyard-total"] == "0"


def test_a_stream_whose_task_is_deleted_ends(yard: Deployment) -> None:
    """Killed and deleted (DELETE ?force) while a client follows it: the stream ends with
    an end event, stopped or deleted, whichever it saw (it broke off in an exception
    when the deletion came between its reads)."""
    for _ in range(3):
        task = yard.submit("operator", argv=["sh", "-c", "echo started; exec sleep 30"])
        found: list[dict[str, Any]] = []
        with ThreadPoolExecutor(1) as pool:
            following = pool.submit(events, yard, task["id"], found=found)
            wait_for(lambda f=found: f, message="the first event")
            assert yard.call("operator", "DELETE", f"/api/v1/tasks/{task['id']}",
                             params={"force": True}).status_code == 204
            following.result(timeout=30)
        assert joined(found) == b"started\n"
        assert found[-1]["event"] == "end"
        assert found[-1]["data"]["status"] in ("stopped", "deleted"), found[-1]
    assert "Traceback" not in (yard.home / "web.log").read_text()


def test_a_stream_ends_when_its_token_is_revoked(yard: Deployment) -> None:
    """A token revoked while it follows a task is refused from then on: its stream ends
    (within a second or so) and reconnecting is a 401."""
    task = yard.submit("operator", argv=["sh", "-c", "echo started; exec sleep 30"])
    token_id, secret = yard.add_token("viewer")
    headers = {"Authorization": f"Bearer {secret}"}
    lines: list[str] = []

    def follow() -> None:
        with httpx.stream("GET", yard.base + url(task["id"], live=True), headers=headers,
                          timeout=60) as answer:
            for line in answer.iter_lines():
                lines.append(line)

    with ThreadPoolExecutor(1) as pool:
        following = pool.submit(follow)
        wait_for(lambda: any(line.startswith("event: output") for line in lines),
                 message="the stream's first event")
        assert yard.call("admin", "DELETE", f"/api/v1/tokens/{token_id}").status_code == 200
        following.result(timeout=15)
    assert "event: end" not in lines
    assert_problem(httpx.get(yard.base + url(task["id"], live=True), headers=headers), 401)
    yard.call("operator", "POST", f"/api/v1/tasks/{task['id']}/kill")
