"""What the panel's forms post: logging in and out, controls, bulk actions, and queue,
schedule and tenant changes. Every one is a POST from the panel's own pages with the
session's CSRF token (checked with the origin in ``auth.check_csrf``), goes through
``ops`` like the API, and answers with a redirect back (303) or a page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from .. import access, ops, validate
from ..errors import InvalidInput, TaskyardError, UserError
from ..model import TaskSpec
from . import schemas
from .auth import SESSION_COOKIE, Principal, check_csrf, client_of, own_origin, require_role
from .bulk import run_bulk
from .deps import TaskId, store_of, visible_task
from .panel import _sync_user, new_task_context, render
from .problems import ApiError

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _back(request: Request, path: str, note: str | None = None) -> Response:
    url = _root(request) + path
    if note:
        from urllib.parse import quote

        url += ("&" if "?" in url else "?") + "note=" + quote(note[:300])
    return RedirectResponse(url, status_code=303)


def _same_origin(request: Request) -> None:
    """A login must come from our own login page (no session, so no CSRF token yet)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if (site is not None and site not in ("same-origin", "none")) or (
            site is None and origin is not None and origin != own_origin(request)):
        raise ApiError(403, "cross-site login refused")


@router.get("/login")
def login_page(request: Request, ticket: str | None = None) -> Response:
    """The login form; with ``ticket`` (from ``taskyard web login-url``) a form that the
    page posts by itself: a GET changes nothing, not even a ticket."""
    return render(request, "login.html", None, ticket=ticket or "", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    form = await request.form()
    store = store_of(request)
    auth = request.app.state.auth
    client = client_of(request)
    auth.throttle.check(client)
    ticket, secret = str(form.get("ticket") or ""), str(form.get("token") or "").strip()
    if ticket:
        token = await run_in_threadpool(access.redeem_ticket, store, ticket)
        error = "this login link was used already or has expired: make a new one with" \
                " taskyard web login-url"
    else:
        token = await run_in_threadpool(access.authenticate, store, secret)
        error = "that token is not valid (revoked, expired or mistyped)"
    if token is None:
        await auth.throttle.failed(client)
        response = render(request, "login.html", None, ticket="", error=error)
        response.status_code = 401
        return response
    auth.throttle.succeeded(client)
    cookie, _csrf, expires_at = await run_in_threadpool(access.open_session, store, token)
    response = _back(request, "/tasks")
    import time

    response.set_cookie(SESSION_COOKIE, cookie, max_age=max(1, int(expires_at - time.time())),
                        path=_root(request) or "/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https"
                        or request.headers.get("x-forwarded-proto") == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = _sync_user(request)
    form = await request.form()
    check_csrf(request, who, str(form.get("csrf") or ""))
    await run_in_threadpool(access.end_session, store_of(request),
                            request.cookies.get(SESSION_COOKIE, ""))
    response = _back(request, "/login")
    response.delete_cookie(SESSION_COOKIE, path=_root(request) or "/")
    return response


async def _posted(request: Request, role: str) -> tuple[Principal, dict[str, Any]]:
    """The session's principal for a state change, checked (origin, CSRF, role)."""
    who = await run_in_threadpool(_sync_user, request)
    form = await request.form()
    check_csrf(request, who, str(form.get("csrf") or request.headers.get("x-csrf-token") or ""))
    require_role(who, role)
    return who, {k: v for k, v in form.items() if isinstance(v, str)}


def _task_verb(request: Request, who: Principal, task_id: int, verb: str,
               form: dict[str, Any]) -> str | None:
    store = store_of(request)
    visible_task(store, who, task_id)
    if verb == "kill":
        ops.kill(store, task_id, form.get("signal") or "TERM", by=who.by)
    elif verb == "pause":
        ops.pause(store, task_id, by=who.by)
    elif verb == "resume":
        ops.resume(store, task_id, by=who.by)
    elif verb == "restart":
        ops.restart(store, task_id, by=who.by)
    elif verb == "delete":
        ops.remove(store, task_id, by=who.by)
        return "deleted"
    elif verb == "config":
        patch = validate.parse_json_object(form.get("patch") or "{}", "config")
        ops.set_config(store, task_id, patch)
    elif verb == "meta":
        ops.set_meta(store, task_id, validate.parse_json_object(form.get("patch") or "{}"))
    elif verb == "graceful":
        ops.ask_stop(store, task_id)
    elif verb == "signal":
        data = form.get("data", "").strip()
        ops.send_signal(store, task_id, form.get("name", "").strip(),
                        validate.parse_json_value(data, "data") if data else None, by=who.by)
    else:
        raise ApiError(404, f"no action {verb!r}")
    return None


@router.post("/tasks/{task_id}/do/{verb}")
async def task_action(request: Request, task_id: TaskId, verb: str) -> Response:
    who, form = await _posted(request, "operator")
    try:
        gone = await run_in_threadpool(_task_verb, request, who, task_id, verb, form)
    except UserError as exc:
        return _back(request, f"/tasks/{task_id}", str(exc))
    except TaskyardError as exc:  # recorded, not applied yet (no server answered)
        return _back(request, f"/tasks/{task_id}", str(exc))
    if gone:
        return _back(request, "/tasks", f"task {task_id} deleted")
    return _back(request, f"/tasks/{task_id}")


def _new_spec(who: Principal, form: dict[str, Any]) -> TaskSpec:
    """The TaskSpec of the New task form: the command line split as a shell would split
    it (quotes, backslashes), but run without one."""
    import shlex

    try:
        argv = shlex.split(form.get("command", ""))
    except ValueError as exc:  # No closing quotation, No escaped character
        raise InvalidInput(f"the command cannot be split: {str(exc).lower()}",
                           field="command") from None
    if not argv:
        raise InvalidInput("give a command to run", field="command")
    text = {k: str(form.get(k) or "").strip() for k in ("priority", "timeout", "cwd", "meta")}
    try:
        priority = int(text["priority"] or "0")
    except ValueError:
        raise InvalidInput("priority must be a whole number", field="priority") from None
    timeout = validate.parse_duration(text["timeout"], "timeout") if text["timeout"] else None
    meta = validate.parse_json_object(text["meta"], "meta") if text["meta"] else {}
    return TaskSpec(argv=tuple(argv), name=str(form.get("name") or "").strip() or None,
                    queue=str(form.get("queue") or "").strip() or "default",
                    cwd=text["cwd"] or None, meta=meta, priority=priority, timeout=timeout,
                    tenant=who.tenant or str(form.get("tenant") or "").strip() or "default")


@router.post("/tasks/new")
async def new_task(request: Request) -> Response:
    """Submit a command from the New task form; then its page (or the form again, with
    the values and what was wrong)."""
    who, form = await _posted(request, "operator")
    try:
        spec = _new_spec(who, form)
        task = await run_in_threadpool(ops.submit, store_of(request), spec, by=who.by)
    except UserError as exc:
        context = await run_in_threadpool(new_task_context, request, who, form, str(exc),
                                          exc.field)
        response = render(request, "task_new.html", who, **context)
        response.status_code = 422
        return response
    return _back(request, f"/tasks/{task.id}")


@router.post("/tasks/bulk")
async def bulk_action(request: Request) -> Response:
    """The first post is a dry run (a preview page); the preview's Confirm posts the
    snapshot, and the result page says what was done."""
    who, form = await _posted(request, "operator")
    meta = validate.parse_json_object(form["meta"], "meta") if form.get("meta") else {}
    try:
        body = schemas.BulkBody(action=form.get("action", ""), dry_run=not form.get("snapshot"),
                                snapshot=form.get("snapshot") or None,
                                filter=schemas.BulkFilter(
                                    status=[s for s in (form.get("status") or "").split(",") if s],
                                    queue=form.get("queue") or None,
                                    tenant=form.get("tenant") or None,
                                    name=form.get("name") or None, meta=meta,
                                    q=form.get("q") or None))
    except ValueError as exc:
        raise InvalidInput(f"bad bulk action: {exc}", field="action") from None
    result = await run_in_threadpool(run_bulk, store_of(request), who, body)
    return render(request, "bulk.html", who, result=result, form=form)


def _admin_verb(request: Request, who: Principal, kind: str, name: str, verb: str,
                form: dict[str, Any]) -> None:
    store = store_of(request)
    if kind == "schedules":
        sched = store.get_schedule(name)
        who.require_visible(sched.tenant, f"schedule {name!r}")
        if verb == "run":
            ops.run_schedule(store, name, by=who.by)
        else:
            ops.pause_schedule(store, name, verb == "pause")
        return
    who.require_global()
    limit = form.get("parallel", "").strip()
    parallel = None if limit in ("", "unlimited") else validate.whole(
        int(limit) if limit.isdigit() else -1, "parallel", 1)
    if kind == "queues":
        {"pause": lambda: ops.pause_queue(store, name),
         "resume": lambda: ops.resume_queue(store, name),
         "limit": lambda: ops.set_queue_parallel(store, name, parallel)}[verb]()
    else:
        {"enable": lambda: ops.enable_tenant(store, name),
         "disable": lambda: ops.disable_tenant(store, name),
         "limit": lambda: ops.set_tenant_parallel(store, name, parallel)}[verb]()


_VERBS = {"queues": ("pause", "resume", "limit"), "schedules": ("pause", "resume", "run"),
          "tenants": ("enable", "disable", "limit")}


@router.post("/{kind}/{name}/do/{verb}")
async def admin_action(request: Request, kind: str, name: str, verb: str) -> Response:
    if verb not in _VERBS.get(kind, ()):
        raise ApiError(404, f"no action {verb!r} on {kind}")
    who, form = await _posted(request, "admin")
    try:
        await run_in_threadpool(_admin_verb, request, who, kind, name, verb, form)
    except UserError as exc:
        return _back(request, f"/{kind}", str(exc))
    return _back(request, f"/{kind}")
