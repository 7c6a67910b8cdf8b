"""A task's output over HTTP: raw bytes by range (also standard ``Range`` requests),
and a live Server-Sent Events stream whose event ids are byte offsets, so that a
reconnect with ``Last-Event-ID`` resumes exactly where it stopped.

The web process only reads the store: a live stream polls it (every
``LIVE_POLL`` seconds while the attempt runs), cheaply (one indexed read).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from .. import ops
from ..errors import InvalidInput, NotFound
from ..model import OutputRead
from ..store.sqlserver import SqlServerStore
from .auth import Principal
from .deps import MAX_ID, GatedRoute, Store, TaskId, Viewer, visible_task
from .problems import ApiError

router = APIRouter(prefix="/api/v1/tasks", tags=["output"],
                   route_class=GatedRoute)

DEFAULT_LIMIT = 4 * 1024 * 1024
MAX_LIMIT = 32 * 1024 * 1024
MAX_OFFSET = 2**62  #: past any output
LIVE_POLL = 0.02  #: seconds between looks at a live stream while nothing new came ...
LIVE_POLL_MAX = 0.04  #: ... growing to this while it stays quiet
LIVE_CHUNK = 256 * 1024  #: bytes per event at most
KEEPALIVE = 15.0  #: seconds between comments on an idle stream (proxies close idle ones)
#: A stream ends this many seconds at most after its token was revoked or expired.
TOKEN_CHECK = 1.0
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
Stream = Literal["stdout", "stderr"]


def _headers(read: OutputRead) -> dict[str, str]:
    headers = {"Taskyard-Total": str(read.total), "Taskyard-Next-Offset": str(read.next_offset),
               "Taskyard-Finished": "1" if read.finished else "0", "Cache-Control": "no-store"}
    if read.dropped is not None:
        headers["Taskyard-Dropped"] = f"{read.dropped[0]}-{read.dropped[1]}"
    return headers


def _parse_range(header: str, total: int) -> tuple[int, int]:
    """``bytes=A-B`` / ``bytes=A-`` / ``bytes=-N`` to (offset, limit)."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise InvalidInput("Range must be bytes=A-B, bytes=A- or bytes=-N", field="Range")
    first, last = match.groups()
    if first == "":
        n = int(last)
        return max(0, total - n), n
    start = int(first)
    if last and int(last) < start:  # not a range (it was a 422 about "offset")
        raise InvalidInput("Range: the last byte is before the first", field="Range")
    return start, (int(last) - start + 1 if last else MAX_LIMIT)


@router.get("/{task_id}/output/{stream}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}},
                       206: {"content": {"application/octet-stream": {}}}})
def output(task_id: TaskId, stream: Stream, store: Store, who: Viewer,
           attempt: int | None = Query(None, ge=1, le=MAX_ID),
           offset: int = Query(0, ge=0, le=MAX_OFFSET),
           limit: int = Query(DEFAULT_LIMIT, ge=0, le=MAX_LIMIT),
           download: bool = Query(False, description="as an attachment (a file to save)"),
           range_header: str | None = Header(None, alias="Range", description="bytes=A-B,"
                                             " bytes=A- or bytes=-N: a 206"),
           ) -> Response:
    """Raw bytes of ``stdout`` or ``stderr`` (of the latest attempt, or ``attempt``) from
    ``offset``. Headers: ``Taskyard-Total`` (bytes written), ``Taskyard-Next-Offset``
    (where to read on), ``Taskyard-Dropped`` (``A-B``: bytes the output bound dropped).
    A ``Range: bytes=A-B`` header gets 206 with ``Content-Range``."""
    visible_task(store, who, task_id)
    wanted = range_header
    if wanted is None:
        read = ops.read_output(store, task_id, stream, offset, limit, attempt)
        headers = _headers(read)
        if download:
            headers["Content-Disposition"] = (f'attachment; filename="task-{task_id}-'
                                              f'{attempt or "latest"}.{stream}.txt"')
        return Response(read.data, media_type="application/octet-stream", headers=headers)
    total = ops.read_output(store, task_id, stream, 0, 0, attempt).total
    start, count = _parse_range(wanted, total)
    if start >= total:
        raise ApiError(416, f"the stream has {total} bytes",
                       headers={"Content-Range": f"bytes */{total}"})
    read = ops.read_output(store, task_id, stream, start, min(count, MAX_LIMIT), attempt)
    first = read.next_offset - len(read.data)
    headers = _headers(read)
    if read.data:
        headers["Content-Range"] = f"bytes {first}-{read.next_offset - 1}/{read.total}"
    return Response(read.data, status_code=206, media_type="application/octet-stream",
                    headers=headers)


def _event(kind: str, event_id: int | None, data: dict[str, object]) -> bytes:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return (head + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n").encode()


async def follow(store: SqlServerStore, who: Principal, task_id: int, stream: str,
                 attempt: int | None, offset: int,
                 probe: SqlServerStore | None = None) -> AsyncIterator[bytes]:
    """``output`` events (``data`` base64, ``offset`` of its first byte; the event id is
    the offset after it), ``dropped`` when the output bound skipped a range, and ``end``
    once the attempt ended and everything was sent (status ``deleted`` when the task was
    removed meanwhile: the stream had broken off in an exception). A comment every
    KEEPALIVE seconds while nothing comes. The stream ends (without an end event)
    within TOKEN_CHECK seconds of its token being revoked or expiring."""
    yield b"retry: 1000\n\n"
    position = [offset]  # where the stream is, for the end of a task deleted meanwhile
    checked = time.monotonic()
    events = _follow(store, who, task_id, stream, attempt, position, probe)
    try:
        async for event in events:
            if event:  # b"": nothing new (a moment to check the token)
                yield event
            if time.monotonic() - checked > TOKEN_CHECK:
                checked = time.monotonic()
                if not await run_in_threadpool(_still_valid, store, who):
                    return  # a reconnect is refused (401)
    except NotFound:
        yield _event("end", position[0], {"total": position[0], "status": "deleted"})
    finally:
        await events.aclose()


def _still_valid(store: SqlServerStore, who: Principal) -> bool:
    try:
        return store.find_token(who.token.id).valid(time.time())
    except NotFound:
        return False


def _news(probe: SqlServerStore, task_id: int, attempt: int, stream: str,
          offset: int) -> bool:
    """Whether the stream has bytes past ``offset`` or its attempt ended (on the event
    loop, with the web process's own SQLite connection: a look costs microseconds, a
    read through the thread pool a tenth of a millisecond)."""
    total, ended = probe.stream_state(task_id, attempt, stream)
    return total > offset or ended


class _Pace:
    """The rests between looks at a stream with nothing new: from ``first`` seconds
    growing to ``most``; a keep-alive comment every KEEPALIVE seconds of quiet."""

    def __init__(self, first: float = LIVE_POLL, most: float = LIVE_POLL_MAX) -> None:
        self.first, self.most = first, most
        self.pause, self.idle = first, 0.0

    def news(self) -> None:
        self.pause, self.idle = self.first, 0.0

    async def rest(self) -> bytes:
        """Sleep; b"" (a moment to check the token) or a keep-alive comment."""
        await asyncio.sleep(self.pause)
        self.idle += self.pause
        self.pause = min(self.pause * 1.5, self.most)
        if self.idle >= KEEPALIVE:
            self.idle = 0.0
            return b": keep-alive\n\n"
        return b""


async def _follow(store: SqlServerStore, who: Principal, task_id: int, stream: str,
                  attempt: int | None, position: list[int],
                  probe: SqlServerStore | None = None) -> AsyncGenerator[bytes, None]:
    offset, waiting = position[0], _Pace(0.1, 0.1)
    while attempt is None:  # the latest attempt, once there is one: then that one only
        task = await run_in_threadpool(visible_task, store, who, task_id)
        if task.attempt:
            attempt = task.attempt
        elif task.terminal:  # stopped before it ever started
            yield _event("end", offset, {"total": 0, "status": task.status.value})
            return
        else:  # a task scheduled for later: say we are here now and then
            yield await waiting.rest()
    pace = _Pace()
    while True:
        read = await run_in_threadpool(ops.read_output, store, task_id, stream, offset,
                                       LIVE_CHUNK, attempt)
        if read.dropped is not None:
            yield _event("dropped", read.dropped[1], {"from": read.dropped[0],
                                                       "to": read.dropped[1]})
        if read.data:
            first = read.next_offset - len(read.data)
            yield _event("output", read.next_offset,
                         {"offset": first, "data": base64.b64encode(read.data).decode()})
            pace.news()
        offset = position[0] = max(offset, read.next_offset)
        if read.finished and offset >= read.total:
            task = await run_in_threadpool(visible_task, store, who, task_id)
            yield _event("end", offset, {"total": read.total, "status": task.status.value})
            return
        if read.data and len(read.data) >= LIVE_CHUNK:
            continue  # more is waiting
        while True:  # look cheaply until there is something to read
            yield await pace.rest()
            if probe is None or _news(probe, task_id, attempt, stream, offset):
                break


@router.get("/{task_id}/output/{stream}/live", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def live(task_id: TaskId, stream: Stream, request: Request, store: Store, who: Viewer,
         attempt: int | None = Query(None, ge=1, le=MAX_ID),
         offset: int = Query(0, ge=0, le=MAX_OFFSET),
         last_event_id: str | None = Header(None, alias="Last-Event-ID", description="the id"
                                            " of the last event seen: resume after it"),
         ) -> StreamingResponse:
    """Server-Sent Events of the stream as it is written (see ``follow``); a reconnect
    with ``Last-Event-ID`` resumes at that byte offset."""
    task = visible_task(store, who, task_id)
    if attempt is not None and not 1 <= attempt <= task.attempt:
        raise InvalidInput(f"task {task_id} has no attempt {attempt}", field="attempt")
    last = last_event_id
    if last is not None:
        if not (last.isascii() and last.isdigit()) or len(last) > 19 or int(last) > MAX_OFFSET:
            raise InvalidInput("Last-Event-ID must be a byte offset", field="Last-Event-ID")
        offset = int(last)
    probe = request.app.state.auth.inline
    return StreamingResponse(follow(store, who, task_id, stream, attempt, offset, probe),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
