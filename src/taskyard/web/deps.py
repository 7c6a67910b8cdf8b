"""What routes share: the store, the caller (by role), and turning query strings into
filters and cursors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from ..errors import InvalidInput
from ..model import Task
from ..search import MAX_ID as MAX_ID
from ..search import decode_cursor as decode_cursor
from ..search import encode_cursor as encode_cursor
from ..search import make_filter, meta_pairs
from ..store.filters import TaskFilter
from ..store.sqlserver import SqlServerStore
from .auth import CSRF_HEADER, UNSAFE, Auth, Principal, check_csrf, require_role


def store_of(request: Request) -> SqlServerStore:
    store: SqlServerStore = request.app.state.store
    return store


#: A tenant no task has (tenant names are printable) and every store can compare with
#: (PostgreSQL refuses text with NUL: a "\0" here was a 503 for a tenant's token asking
#: for another tenant's tasks).
NO_TENANT = "\n"
PRINCIPAL = "taskyard.principal"  #: the request scope's key of its authorized caller
#: A task id in a path: a 422 naming ``task_id`` when it is no id at all (a store given
#: one past 64 bits fails: SQLite raised OverflowError, a 500)
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="a task id")]


async def authorize(request: Request, role: str) -> Principal:
    """The caller, who must hold ``role`` (and, for a state change made with the panel's
    cookie, come from the panel with its CSRF token). Authenticated once a request."""
    principal: Principal | None = request.scope.get(PRINCIPAL)
    if principal is None:
        auth: Auth = request.app.state.auth
        principal = await auth.principal(request)
        if request.method in UNSAFE:
            check_csrf(request, principal, request.headers.get(CSRF_HEADER))
        request.scope[PRINCIPAL] = principal
    require_role(principal, role)
    refuse_nul(request)
    return principal


def refuse_nul(request: Request) -> None:
    """A NUL in a path or query parameter is bad input (no name, key or text taskyard
    keeps has one; PostgreSQL refuses it, which was a 503 'store unavailable', and
    SQLite's LIKE ends a pattern there, so that q=%00 matched every task)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\0" in str(value) or "\0" in name:
            raise InvalidInput(f"{name} contains a NUL character", field=name)


def needs(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``role`` (see ``authorize``)."""

    async def caller(request: Request) -> Principal:
        return await authorize(request, role)

    caller.__name__ = f"needs_{role}"
    caller.role = role  # type: ignore[attr-defined]  # read by GatedRoute
    return caller


class GatedRoute(APIRoute):
    """A route whose caller must hold a role is authorized before its body is read: a
    request without a valid token is a 401 (or a 403) whatever its body, never a 400 or
    422 about a body it had no right to send."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        roles = [getattr(d.call, "role", None) for d in self.dependant.dependencies]
        role = next((r for r in roles if isinstance(r, str)), None)
        known = _query_names(self.dependant) if self.path.startswith("/api/") else None
        if role is None and known is None:
            return handler

        async def gated(request: Request) -> Response:
            if role is not None:
                await authorize(request, role)
            if known is not None:
                refuse_unknown_query(request, *known)
            return await handler(request)

        return gated


def _query_names(dependant: Dependant) -> tuple[frozenset[str], tuple[str, ...]]:
    """The query parameters a route reads: by name, and by prefix (``meta.``)."""
    names = {p.alias for p in dependant.query_params}
    prefixes = [getattr(dependant.call, "query_prefix", None)]
    for sub in dependant.dependencies:
        sub_names, sub_prefixes = _query_names(sub)
        names |= sub_names
        prefixes += sub_prefixes
    return frozenset(names), tuple(p for p in prefixes if isinstance(p, str))


def refuse_unknown_query(request: Request, names: frozenset[str],
                         prefixes: tuple[str, ...]) -> None:
    """A query parameter the route does not read is bad input (a misspelt filter,
    ``?stauts=failed``, listed every task as though there were none)."""
    for name in request.query_params:
        if name not in names and not name.startswith(prefixes or ("\0",)):
            takes = ", ".join(sorted(names) + [f"{p}KEY" for p in prefixes]) or "none"
            raise InvalidInput(f"unknown query parameter {name!r} (this route takes: {takes})",
                               field=name)


Viewer = Annotated[Principal, Depends(needs("viewer"))]
Operator = Annotated[Principal, Depends(needs("operator"))]
Admin = Annotated[Principal, Depends(needs("admin"))]
async def _store_dependency(request: Request) -> SqlServerStore:
    """store_of as a dependency: async, because a plain function dependency costs a trip
    through the thread pool (no I/O here to wait for)."""
    return store_of(request)


Store = Annotated[SqlServerStore, Depends(_store_dependency)]


def visible_task(store: SqlServerStore, principal: Principal, task_id: int) -> Task:
    """The task, if the caller may see it (else: not found, whether it exists or not)."""
    task = store.get(task_id)
    principal.require_visible(task.tenant, f"task {task_id}")
    return task


def task_filter(principal: Principal, *, status: list[str] | None = None,
                queue: str | None = None, tenant: str | None = None, name: str | None = None,
                meta: dict[str, str] | None = None, q: str | None = None,
                kind: str | None = None, since: str | None = None,
                until: str | None = None) -> TaskFilter:
    """The filter a caller asked for, within what it may see: a tenant's token only ever
    sees its tenant (asking for another finds nothing)."""
    statuses: list[str] = []
    for value in status or []:
        statuses.extend(v for v in value.split(",") if v)
    if status and not statuses:
        raise InvalidInput("status is empty: leave it out to match every task", field="status")
    if tenant == "":  # before a tenant's token makes it its own
        raise InvalidInput("tenant is empty: leave it out to match every task", field="tenant")
    if principal.tenant is not None:
        if tenant is not None and tenant != principal.tenant:
            tenant = NO_TENANT  # matches nothing, reveals nothing
        else:
            tenant = principal.tenant
    return make_filter(status=statuses, queue=queue, tenant=tenant, name=name,
                       meta=meta_pairs([f"{k}={v}" for k, v in (meta or {}).items()]),
                       text=q, kind=kind,
                       since=since, until=until, text_field="q")


def meta_params(request: Request) -> dict[str, str]:
    """``meta.KEY=VALUE`` query parameters (KEY may be a dotted path); as a dependency
    (``MetaParams``), it lets its route take them."""
    return {k[5:]: v for k, v in request.query_params.multi_items() if k.startswith("meta.")}


meta_params.query_prefix = "meta."  # type: ignore[attr-defined]  # read by GatedRoute
MetaParams = Annotated[dict[str, str], Depends(meta_params)]


def task_json(task: Task) -> dict[str, Any]:
    return task.to_json()
