"""A task's messages over HTTP: a page of them as JSON, and a live Server-Sent Events
stream whose event ids are message numbers (a reconnect with ``Last-Event-ID``
resumes after the last one seen). Paced like the output's live stream."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from .. import messages
from ..errors import InvalidInput, NotFound
from ..model import JSON
from ..store.sqlserver import SqlServerStore
from .api_output import TOKEN_CHECK, _event, _Pace, _still_valid
from .auth import Principal
from .deps import MAX_ID, GatedRoute, Store, TaskId, Viewer, visible_task

router = APIRouter(prefix="/api/v1/tasks", tags=["messages"], route_class=GatedRoute)
MAX_NUMBER = 2**62


@router.get("/{task_id}/messages")
def read(task_id: TaskId, store: Store, who: Viewer,
         since: int = Query(0, ge=0, le=MAX_NUMBER, description="the first message number"),
         limit: int = Query(messages.READ_LIMIT, ge=1, le=messages.MAX_READ),
         attempt: int | None = Query(None, ge=1, le=MAX_ID)) -> dict[str, JSON]:
    """Messages of the latest attempt (or ``attempt``) numbered ``since`` and on:
    ``items`` ({n, value, raw}), ``next`` (the ``since`` of the next read), ``dropped``
    (by the bound), ``finished``, ``total``, ``attempt``."""
    visible_task(store, who, task_id)
    return messages.read(store, task_id, since, limit, attempt).as_json()


async def follow(store: SqlServerStore, who: Principal, task_id: int, attempt: int | None,
                 since: int) -> AsyncIterator[bytes]:
    """``message`` events (id: its number; data {n, value, raw}), ``dropped`` where the
    bound skipped numbers, ``end`` once the attempt ended and all was sent (status
    ``deleted`` if the task was removed meanwhile). Ends within TOKEN_CHECK seconds of
    its token being revoked."""
    yield b"retry: 1000\n\n"
    position = [since]
    checked = time.monotonic()
    events = _follow(store, who, task_id, attempt, position)
    try:
        async for event in events:
            if event:
                yield event
            if time.monotonic() - checked > TOKEN_CHECK:
                checked = time.monotonic()
                if not await run_in_threadpool(_still_valid, store, who):
                    return
    except NotFound:
        yield _event("end", None, {"next": position[0], "status": "deleted"})
    finally:
        await events.aclose()


async def _follow(store: SqlServerStore, who: Principal, task_id: int, attempt: int | None,
                  position: list[int]) -> AsyncGenerator[bytes, None]:
    waiting = _Pace(0.1, 0.1)
    while attempt is None:  # the latest attempt, once there is one: then that one only
        task = await run_in_threadpool(visible_task, store, who, task_id)
        if task.attempt:
            attempt = task.attempt
        elif task.terminal:
            yield _event("end", None, {"next": position[0], "status": task.status.value})
            return
        else:
            yield await waiting.rest()
    pace = _Pace()
    while True:
        read = await run_in_threadpool(messages.read, store, task_id, position[0],
                                       messages.READ_LIMIT, attempt)
        for event in _events(read, position):
            yield event
        if read.items:
            pace.news()
            continue
        if read.finished and position[0] >= read.total:
            task = await run_in_threadpool(visible_task, store, who, task_id)
            yield _event("end", None, {"next": position[0], "status": task.status.value})
            return
        while True:  # look cheaply until there is something to read
            yield await pace.rest()
            total, ended = await run_in_threadpool(store.message_state, task_id, attempt)
            if total > position[0] or ended:
                break


def _events(read: messages.MessagesRead, position: list[int]) -> list[bytes]:
    found = []
    for item in read.items:
        if item.number > position[0]:
            found.append(_event("dropped", None, {"from": position[0], "to": item.number}))
        found.append(_event("message", item.number, item.as_json()))
        position[0] = item.number + 1
    return found


@router.get("/{task_id}/messages/live", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def live(task_id: TaskId, request: Request, store: Store, who: Viewer,
         attempt: int | None = Query(None, ge=1, le=MAX_ID),
         since: int = Query(0, ge=0, le=MAX_NUMBER),
         last_event_id: str | None = Header(None, alias="Last-Event-ID", description="the"
                                            " number of the last message seen: resume after"
                                            " it"),
         ) -> StreamingResponse:
    """Server-Sent Events of the messages as they are emitted (see ``follow``)."""
    task = visible_task(store, who, task_id)
    if attempt is not None and not 1 <= attempt <= task.attempt:
        raise InvalidInput(f"task {task_id} has no attempt {attempt}", field="attempt")
    last = last_event_id
    if last is not None:
        if not (last.isascii() and last.isdigit()) or len(last) > 19 or int(last) >= MAX_NUMBER:
            raise InvalidInput("Last-Event-ID must be a message number", field="Last-Event-ID")
        since = int(last) + 1
    return StreamingResponse(follow(store, who, task_id, attempt, since),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
