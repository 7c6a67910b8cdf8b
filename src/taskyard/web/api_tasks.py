"""/api/v1/tasks: submit, list, count, read and steer tasks. Every route is a thin
client of ``ops`` and the store, with the same checks as the CLI."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import ops, why
from ..errors import InvalidInput, NotFound, TaskyardError
from ..model import hook_json
from ..specjson import spec_of
from ..statuspath import shown_path
from ..store.browse import Waiting
from ..store.filters import TaskFilter
from ..store.sqlserver import SqlServerStore
from . import schemas
from .auth import Principal
from .deps import (
    GatedRoute,
    MetaParams,
    Operator,
    Store,
    TaskId,
    Viewer,
    decode_cursor,
    encode_cursor,
    task_filter,
    task_json,
    visible_task,
)

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], route_class=GatedRoute)

#: How long a control waits for the owning server to apply it before answering 202.
CONTROL_WAIT = 10.0
RECORDED: dict[int | str, dict[str, Any]] = {202: {
    "model": schemas.TaskOut, "description": "recorded: no server applied it within 10 s;"
                                             " the one that owns the task will"}}


@router.post("", status_code=201, response_model=schemas.TaskOut,
             responses={200: {"model": schemas.TaskOut,
                              "description": "the task made by an earlier request with the"
                                             " same Idempotency-Key"}})
async def submit(body: schemas.SubmitBody, request: Request, store: Store, who: Operator,
                 idempotency_key: str | None = Header(None, description="retries with the"
                                                      " same key answer the first task (24"
                                                      " hours)"),
                 ) -> Response:
    """Submit a command or a function call (201). With an ``Idempotency-Key`` header, a
    retried request answers the task made the first time (200), for 24 hours."""
    # The hot path of the API: on the event loop when the store is a local SQLite file
    # whose write lock is free (web/inline.py), else one trip to a worker thread
    # (asyncio's own executor: a third cheaper than FastAPI's thread pool); the answer
    # serialized once, as the CLI's --json has it (a Task's JSON is TaskOut by
    # construction; validating it again cost a tenth of the request).
    inline = request.app.state.inline
    top = request.app.state.settings.max_tail_bytes  # the largest output tail allowed
    if inline is not None:
        status, data = await inline.write(_submit, body, who, idempotency_key, top)
    else:
        status, data = await asyncio.get_running_loop().run_in_executor(
            None, _submit, store, body, who, idempotency_key, top)
    return JSONResponse(data, status_code=status)


def _submit(store: SqlServerStore, body: schemas.SubmitBody, who: Principal,
            idempotency_key: str | None, max_tail: int) -> tuple[int, dict[str, Any]]:
    spec = spec_of(body, who.tenant)
    require_visible_after(store, who, spec.after)
    key = idempotency_key
    if key is None:
        task, new = ops.submit(store, spec, by=who.by, max_tail=max_tail), True
    else:
        if not key or len(key) > 255 or not key.isprintable():
            raise InvalidInput("Idempotency-Key must be 1-255 printable characters",
                               field="Idempotency-Key")
        task, new = ops.submit_once(store, spec, by=who.by, token_id=who.token.id, key=key,
                                    max_tail=max_tail)
    return (201 if new else 200), task_json(task)


def require_visible_after(store: Store, who: Principal, after: tuple[int, ...]) -> None:
    """Tasks to run after must exist and be the caller's to see: another tenant's task
    is as unknown as one that never was (its id would tell it exists, and its end would
    decide this task's)."""
    if not after:
        return
    tenants = store.task_tenants(after)
    for task_id in sorted(set(after)):
        if task_id not in tenants or not who.sees(tenants[task_id]):
            raise NotFound(f"no task {task_id}", field="after")


def _filter(meta: dict[str, str], who: Any, status: list[str] | None, queue: str | None,
            tenant: str | None, name: str | None, q: str | None, kind: str | None = None,
            since: str | None = None, until: str | None = None) -> TaskFilter:
    return task_filter(who, status=status, queue=queue, tenant=tenant, name=name,
                       meta=meta, q=q, kind=kind, since=since, until=until)


KIND = Query(None, description="command | function | tracked")
SINCE = Query(None, description="submitted at or after: ISO 8601, or a duration ago (1h)")
UNTIL = Query(None, description="submitted before: ISO 8601, or a duration ago (1h)")


@router.get("", response_model=schemas.TaskPage)
def list_tasks(meta: MetaParams, store: Store, who: Viewer,
               status: list[str] | None = Query(None, description="repeat or comma-separate"),
               queue: str | None = None, tenant: str | None = None,
               name: str | None = Query(None, description="exact, or a glob of * and ?"),
               q: str | None = Query(None, description="free text in the name, command or"
                                     " function (3 characters or more)"),
               kind: str | None = KIND, since: str | None = SINCE, until: str | None = UNTIL,
               limit: int = Query(50, ge=1, le=500),
               cursor: str | None = Query(None, description="next_cursor of the page before"),
               ) -> dict[str, Any]:
    """Tasks newest first, a page at a time; also ``meta.KEY=VALUE`` parameters."""
    f = _filter(meta, who, status, queue, tenant, name, q, kind, since, until)
    page = store.browse(f, before=decode_cursor(cursor), limit=limit)
    return {"items": [task_json(t) for t in page.items],
            "next_cursor": encode_cursor(page.next_before), "partial": page.partial}


@router.get("/counts", response_model=schemas.Counts)
def counts(meta: MetaParams, store: Store, who: Viewer,
           status: list[str] | None = Query(None), queue: str | None = None,
           tenant: str | None = None, name: str | None = None, q: str | None = None,
           kind: str | None = KIND, since: str | None = SINCE, until: str | None = UNTIL,
           ) -> dict[str, Any]:
    """Tasks per status matching the same filters as the list (its status aside)."""
    f = _filter(meta, who, status, queue, tenant, name, q, kind, since, until)
    found, partial = store.count_tasks(f)
    return {"counts": found, "total": sum(found.values()), "partial": partial}


@router.post("/bulk", response_model=schemas.BulkOut)
def bulk(body: schemas.BulkBody, store: Store, who: Operator) -> dict[str, Any]:
    """Act on every task a filter matches (at most 10,000): first with ``dry_run`` to see
    how many and which, then with the dry run's ``snapshot`` to act on exactly that set."""
    from .bulk import run_bulk

    return run_bulk(store, who, body)


@router.get("/{task_id}", response_model=schemas.TaskDetail)
def get_task(task_id: TaskId, store: Store, who: Viewer, request: Request) -> dict[str, Any]:
    """A task with its attempts, its events and, while it waits, why it does not run."""
    task = visible_task(store, who, task_id)
    data = task_json(task)
    attempts = store.attempts(task_id)
    data["attempts"] = [a.to_json() for a in attempts]
    data["events"] = [e.to_json() for e in store.events(task_id)]
    data["hooks"] = [hook_json(h) for h in store.hooks_of(task_id)]
    data["status_file"] = shown_path(task, attempts, store.queue_status_dirs(),
                                     request.app.state.settings.status_dir)
    data["waiting"] = []
    if task.status.value in ("queued", "scheduled"):
        lease = request.app.state.settings.lease
        facts = store.waiting(task_id)
        reasons = why.explain(facts, time.time(), lease)
        if who.tenant is not None:
            reasons = _tenant_view(store, who, facts, reasons)
        data["waiting"] = [r.to_json() for r in reasons]
    return data


def _tenant_view(store: Store, who: Principal, w: Waiting,
                 reasons: list[why.Reason]) -> list[why.Reason]:
    """Why a tenant's task waits, as its token may read it: other tenants' tasks (their
    ids, how many there are) and the servers, which every tenant shares, go unnamed."""
    queue = w.task.queue
    active = store.task_tenants(w.queue_active) if w.queue_active else {}
    mine = sorted(i for i, tenant in active.items() if who.sees(tenant))
    yours = f" (yours: task {', '.join(map(str, mine[:5]))})" if mine else ""
    texts = {
        "queue_limit": f"queue {queue!r} runs at most {w.queue_parallel} at a time and is"
                       f" full{yours}",
        "queue_order": f"queue {queue!r} runs one task at a time in order: other queued"
                       " tasks go first",
        "ahead": f"other tasks of queue {queue!r} are claimed before it",
        "slots": "every slot is busy",
        "no_server": "no server is alive on this store",
    }
    if w.mutex_holder is not None and w.mutex_holder not in mine and not who.sees(
            store.task_tenants([w.mutex_holder]).get(w.mutex_holder, "")):
        texts["mutex"] = f"mutex {w.task.mutex!r} is held by another task"
    return [why.Reason(r.code, texts.get(r.code, r.text)) for r in reasons]


@router.get("/{task_id}/wait", response_model=schemas.TaskWaited)
async def wait(task_id: TaskId, store: Store, who: Viewer,
               timeout: float = Query(30.0, ge=0, le=300)) -> dict[str, Any]:
    """Long poll: the task once it ended, or as it is when ``timeout`` passed
    (``timed_out``)."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        task = await run_in_threadpool(visible_task, store, who, task_id)
        if task.terminal or time.monotonic() >= deadline:
            return {**task_json(task), "timed_out": not task.terminal}
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.25)


def _control(store: Store, task_id: int, apply: Any, response: Response,
             who: Any) -> dict[str, Any]:
    """Run a control; answer 202 when it is recorded but no server applied it yet."""
    visible_task(store, who, task_id)
    try:
        apply()
    except TaskyardError as exc:
        if type(exc) is not TaskyardError:  # user errors: 4xx from the handlers
            raise
        response.status_code = 202
    return task_json(store.get(task_id))


@router.post("/{task_id}/kill", response_model=schemas.TaskOut, responses=RECORDED)
def kill(task_id: TaskId, store: Store, who: Operator, response: Response,
         body: schemas.KillBody | None = None) -> dict[str, Any]:
    """Signal the task's process group (TERM, then KILL after the grace period); a
    waiting task is stopped before it starts. ``graceful``: ask a function task to stop
    by itself."""
    body = body or schemas.KillBody()
    if body.graceful:
        if body.signal != "TERM":
            raise InvalidInput("graceful does not go with a signal", field="graceful")
        return _control(store, task_id, lambda: ops.ask_stop(store, task_id), response, who)
    return _control(store, task_id, lambda: ops.kill(store, task_id, body.signal, by=who.by,
                                                     timeout=CONTROL_WAIT), response, who)


@router.post("/{task_id}/pause", response_model=schemas.TaskOut, responses=RECORDED)
def pause(task_id: TaskId, store: Store, who: Operator, response: Response) -> dict[str, Any]:
    return _control(store, task_id, lambda: ops.pause(store, task_id, by=who.by,
                                                      timeout=CONTROL_WAIT), response, who)


@router.post("/{task_id}/resume", response_model=schemas.TaskOut, responses=RECORDED)
def resume(task_id: TaskId, store: Store, who: Operator, response: Response) -> dict[str, Any]:
    return _control(store, task_id, lambda: ops.resume(store, task_id, by=who.by,
                                                       timeout=CONTROL_WAIT), response, who)


@router.post("/{task_id}/restart", response_model=schemas.TaskOut)
def restart(task_id: TaskId, store: Store, who: Operator) -> dict[str, Any]:
    """Run a finished task again, as a new attempt."""
    visible_task(store, who, task_id)
    return task_json(ops.restart(store, task_id, by=who.by))


@router.post("/{task_id}/stdin", response_model=schemas.TaskOut, responses=RECORDED,
             openapi_extra={"requestBody": {"content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
async def stdin(task_id: TaskId, request: Request, store: Store, who: Operator, response: Response,
                eof: bool = Query(False, description="close stdin after the data")
                ) -> dict[str, Any]:
    """Write the raw body to the stdin of a task submitted with ``stdin_open``."""
    data = await request.body()
    return await run_in_threadpool(
        _control, store, task_id,
        lambda: ops.send(store, task_id, data, eof=eof, by=who.by, timeout=CONTROL_WAIT),
        response, who)


@router.post("/{task_id}/signal", response_model=schemas.SignalOut)
def send_signal(task_id: TaskId, body: schemas.SignalBody, store: Store,
                who: Operator) -> dict[str, Any]:
    """A custom signal the function task reads with ``ctx.signals()``."""
    visible_task(store, who, task_id)
    return ops.send_signal(store, task_id, body.name, body.data, by=who.by)


@router.patch("/{task_id}/meta", response_model=schemas.TaskOut)
def patch_meta(task_id: TaskId, store: Store, who: Operator,
               patch: dict[str, Any] = Body(description="JSON merge patch (RFC 7396)")
               ) -> dict[str, Any]:
    visible_task(store, who, task_id)
    return task_json(ops.set_meta(store, task_id, patch))


@router.get("/{task_id}/config", response_model=schemas.ConfigOut)
def get_config(task_id: TaskId, store: Store, who: Viewer) -> dict[str, Any]:
    return {"config": visible_task(store, who, task_id).config}


@router.patch("/{task_id}/config", response_model=schemas.ConfigOut)
def patch_config(task_id: TaskId, store: Store, who: Operator,
                 patch: dict[str, Any] = Body(description="keys to set; null deletes")
                 ) -> dict[str, Any]:
    visible_task(store, who, task_id)
    return {"config": ops.set_config(store, task_id, patch).config}


@router.delete("/{task_id}", status_code=204, response_class=Response)
def delete(task_id: TaskId, store: Store, who: Operator,
           force: bool = Query(False, description="kill it first if it runs")) -> Response:
    visible_task(store, who, task_id)
    ops.remove(store, task_id, force=force, by=who.by)
    return Response(status_code=204)
