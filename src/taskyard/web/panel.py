"""The "Background tasks" panel: server-rendered pages over the same store reads as
the API. Pages need a panel session (``/login``); their forms post to the routes in
``panel_actions`` with the session's CSRF token."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from .. import access, cron, why
from ..messages import MessagesRead
from ..model import iso
from ..store.browse import Page
from ..store.sqlserver import SqlServerStore
from . import views
from .auth import Principal
from .deps import (
    TaskId,
    decode_cursor,
    encode_cursor,
    meta_params,
    store_of,
    task_filter,
    visible_task,
)
from .problems import ApiError

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals.update(when=views.when, pretty=views.pretty, human=views.human,
                             query=views.query, what=views.what, size=views.size,
                             copy_query=views.copy_query, visible=views.visible)
TEMPLATES.env.filters["visible"] = views.visible
PAGE = 50

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    pass


async def panel_user(request: Request) -> Principal:
    """The panel session's principal; without one, the login page."""
    from .auth import SESSION_COOKIE

    cookie = request.cookies.get(SESSION_COOKIE, "")
    session = await run_in_threadpool(access.session_of, store_of(request), cookie)
    if session is None:
        raise LoginRequired()
    return Principal(session.token, session.csrf)


def render(request: Request, template: str, who: Principal | None, **context: Any) -> Response:
    root = request.scope.get("root_path", "")
    context.update(request=request, root=root, who=who, csrf=who.csrf if who else "",
                   now=time.time())
    response = TEMPLATES.TemplateResponse(request, template, context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/tasks", status_code=303)


def _tasks_context(request: Request, who: Principal, status: str | None, queue: str | None,
                   tenant: str | None, name: str | None, q: str | None,
                   cursor: str | None, fragment: str | None) -> dict[str, Any]:
    store = store_of(request)
    f = task_filter(who, status=[status] if status else None, queue=queue, tenant=tenant,
                    name=name, meta=meta_params(request), q=q)
    # A metadata or text search counts up to 10,000 matches one by one: the list comes
    # first, its counts in a request of their own once the page shows.
    counts: dict[str, int] | None = None
    partial = False
    if fragment == "tabs" or not f.scans:
        counts, partial = store.count_tasks(f)
    page = (store.browse(f, before=decode_cursor(cursor), limit=PAGE) if fragment != "tabs"
            else Page([], None, partial))
    shown_tenant = f.tenant if who.tenant is None else None
    return {"f": f, "page": page, "counts": counts, "partial": partial or page.partial,
            "total": sum(counts.values()) if counts is not None else None,
            "statuses": views.STATUSES,
            "params": views.filter_params(f, tenant=shown_tenant),
            "next_cursor": encode_cursor(page.next_before), "cursor": cursor,
            "progress": {t.id: views.progress(t) for t in page.items},
            "duration": {t.id: views.duration(t) for t in page.items},
            "meta_text": " ".join(shlex.quote(f"{k}:{v}") for k, v in f.meta),
            "meta_json": json.dumps(dict(f.meta), ensure_ascii=False)}


@router.get("/tasks")
def tasks_page(request: Request, status: str | None = None, queue: str | None = None,
               tenant: str | None = None, name: str | None = None, q: str | None = None,
               cursor: str | None = None, fragment: str | None = None,
               meta: str | None = Query(None, description="key:value, space-separated"),
               ) -> Response:
    who = _sync_user(request)
    if meta is not None or "" in request.query_params.values():
        return _redirect_clean(request, meta or "")
    context = _tasks_context(request, who, status, queue, tenant, name, q, cursor, fragment)
    template = {"live": "tasks_live.html", "tabs": "tasks_tabs.html"}.get(fragment or "",
                                                                         "tasks.html")
    return render(request, template, who, **context)


def _redirect_clean(request: Request, meta: str) -> Response:
    """The filter form's address made a deep link: its empty boxes left out, its one
    metadata box (key:value pairs, quoted as in a shell when a value has spaces) as
    meta.KEY=VALUE parameters."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "meta" and v]
    try:
        pairs = shlex.split(meta)
    except ValueError as exc:
        raise ApiError(422, f"metadata filters: {str(exc).lower()}", field="meta") from None
    for pair in pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise ApiError(422, f"metadata filters are key:value (got {pair!r})", field="meta")
        params.append((f"meta.{key}", value))
    from urllib.parse import urlencode

    query = urlencode(params)
    url = f"{request.scope.get('root_path', '')}/tasks{'?' if query else ''}{query}"
    return RedirectResponse(url, status_code=303)


def _sync_user(request: Request) -> Principal:
    """panel_user for sync routes (they run in a worker thread already)."""
    from .auth import SESSION_COOKIE

    session = access.session_of(store_of(request), request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        raise LoginRequired()
    return Principal(session.token, session.csrf)


NEW_TASK_FIELDS = ("command", "name", "queue", "tenant", "priority", "timeout", "cwd", "meta")


def new_task_context(request: Request, who: Principal, values: dict[str, str] | None = None,
                     error: str | None = None, field: str | None = None) -> dict[str, Any]:
    """What the New task form shows: the values (kept after an error), the error and
    the field it names, and the queues and tenants to choose from."""
    store = store_of(request)
    shown = {k: "" for k in NEW_TASK_FIELDS}
    shown.update(queue="default", tenant=who.tenant or "default", priority="0")
    shown.update({k: v for k, v in (values or {}).items() if k in shown})
    tenants = [str(t["name"]) for t in store.tenants()] if who.tenant is None else []
    return {"values": shown, "error": error, "field": field, "tenants": tenants,
            "queues": [str(q["name"]) for q in store.queue_table(who.tenant)]}


@router.get("/tasks/new")
def new_task_page(request: Request) -> Response:
    """The New task form (operator role and up); it posts to ``/tasks/new``."""
    who = _sync_user(request)
    from .auth import require_role

    require_role(who, "operator")
    values = {k: v for k, v in request.query_params.items() if k in NEW_TASK_FIELDS}
    return render(request, "task_new.html", who, **new_task_context(request, who, values))


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: TaskId, attempt: int | None = None,
              stream: str = "stdout", fragment: str | None = None) -> Response:
    who = _sync_user(request)
    store = store_of(request)
    task = visible_task(store, who, task_id)
    attempts = store.attempts(task_id)
    chosen = attempt if attempt is not None else (task.attempt or None)
    if chosen is not None and not 1 <= chosen <= max(task.attempt, 1):
        raise ApiError(404, f"task {task_id} has no attempt {chosen}", field="attempt")
    sizes = {s: store.read_output(task_id, s, 0, 0, chosen).total
             for s in ("stdout", "stderr")} if chosen else {}
    reasons = []
    if task.status.value in ("queued", "scheduled"):
        reasons = why.explain(store.waiting(task_id), time.time(),
                              request.app.state.settings.lease)
    steps = task.steps.get("steps") if isinstance(task.steps, dict) else None
    current_step = task.steps.get("current") if isinstance(task.steps, dict) else None
    context = {"task": task, "attempts": attempts, "events": store.events(task_id),
               "attempt": chosen, "latest": attempt is None, "sizes": sizes,
               "stream": "stderr" if stream == "stderr" else "stdout",
               "reasons": reasons, "progress": views.progress(task),
               "duration": views.duration(task), "controls": views.controls(task, who.role),
               "signals": store.signal_log(task_id), "steps": steps,
               "current_step": current_step, "command": views.what(task),
               "hooks": store.hooks_of(task_id), "messages": _last_messages(store, task_id, chosen)}
    template = "task_fragment.html" if fragment == "live" else "task.html"
    return render(request, template, who, **context)


PANEL_MESSAGES = 100  #: the task page shows an attempt's last this many messages


def _last_messages(store: SqlServerStore, task_id: int,
                   attempt: int | None) -> MessagesRead | None:
    """The last messages of the attempt shown (None before it started)."""
    if not attempt:
        return None
    total = store.read_messages(task_id, 0, 1, attempt).total
    return store.read_messages(task_id, max(0, total - PANEL_MESSAGES), PANEL_MESSAGES, attempt)


DOWNLOAD_CHUNK = 4 * 1024 * 1024


@router.get("/tasks/{task_id}/download/{stream}")
def download(request: Request, task_id: TaskId, stream: str, attempt: int | None = None,
             ) -> Response:
    """Everything kept of a stream as a file, read from the store a few MiB at a time;
    where the output bound dropped bytes, a line says which."""
    who = _sync_user(request)
    store = store_of(request)
    task = visible_task(store, who, task_id)
    if stream not in ("stdout", "stderr"):
        raise ApiError(404, "the streams are stdout and stderr", field="stream")
    chosen = attempt if attempt is not None else task.attempt
    if not 1 <= chosen <= task.attempt:
        raise ApiError(404, f"task {task_id} has no attempt {chosen}", field="attempt")

    def chunks() -> Iterator[bytes]:
        offset = 0
        while True:
            read = store.read_output(task_id, stream, offset, DOWNLOAD_CHUNK, chosen)
            if read.dropped is not None:
                start, end = read.dropped
                yield (f"\n\u22ef taskyard: bytes {start}-{end} ({end - start} bytes) were"
                       " dropped by the output bound \u22ef\n").encode()
            if read.data:
                yield read.data
            if read.next_offset <= offset or read.next_offset >= read.total:
                return
            offset = read.next_offset

    name = f"task-{task_id}-{chosen}.{stream}.txt"
    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/queues")
def queues_page(request: Request) -> Response:
    who = _sync_user(request)
    return render(request, "queues.html", who,
                  queues=store_of(request).queue_table(who.tenant))


@router.get("/schedules")
def schedules_page(request: Request) -> Response:
    who = _sync_user(request)
    store = store_of(request)
    now = time.time()
    found = []
    for sched in store.schedules():
        if not who.sees(sched.tenant):
            continue
        nexts, after = [], max(now, sched.last_tick)
        if not sched.paused:
            for _ in range(5):
                after = cron.next_fire(sched.expr, sched.tz, after)
                nexts.append(after)
        found.append({"s": sched, "next": nexts, "last": store.last_fired(sched.name)})
    return render(request, "schedules.html", who, schedules=found)


@router.get("/tenants")
def tenants_page(request: Request) -> Response:
    who = _sync_user(request)
    found = [t for t in store_of(request).tenants() if who.sees(str(t["name"]))]
    return render(request, "tenants.html", who, tenants=found)


@router.get("/stats")
def stats_page(request: Request, since: str = Query("1h", max_length=40),
               queue: str | None = Query(None)) -> Response:
    """``taskyard stats`` as a page: a tenant's session sees its tenant only."""
    from .. import stats, validate

    who = _sync_user(request)
    f = task_filter(who, queue=validate.check_name(queue or None, "queue"))
    found = stats.collect(store_of(request), stats.window_of(since), queue=f.queue,
                          tenant=f.tenant)
    return render(request, "stats.html", who, s=found, since=since,
                  windows=("10m", "1h", "6h", "1d", "7d"),
                  series={k: (v, max(v, default=0)) for k, v in found.per_minute.items()})


@router.get("/servers")
def servers_page(request: Request) -> Response:
    who = _sync_user(request)
    who.require_global()
    now, lease = time.time(), request.app.state.settings.lease
    found = []
    for sid, host, pid, slots, started, beat, stopped, stop, running in \
            store_of(request).server_table(now - 3600):
        state = ("fenced" if stop == "fenced" else "stopped" if stopped is not None
                 else "alive" if beat >= now - lease else "silent")
        found.append({"id": sid, "host": host, "pid": pid, "slots": slots, "started": started,
                      "beat": beat, "age": now - beat, "running": running, "state": state})
    return render(request, "servers.html", who, servers=found, lease=lease)


__all__ = ["LoginRequired", "iso", "panel_user", "render", "router"]
