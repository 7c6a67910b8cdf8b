"""POST /api/v1/tasks/batch: many submit bodies in one request, written all or none in
one transaction (``Yard.submit_many`` and ``taskyard submit --from-file`` over HTTP).
Every spec is checked, as the single submit checks it (the caller's tenant wins, the
tasks to run after must be the caller's to see), before any is written; a bad one is
a 422 naming its index and field (``tasks.3.argv``)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from .. import ops
from ..errors import InvalidInput, UserError
from ..model import TaskSpec
from ..specjson import spec_of
from ..store.sqlserver import SqlServerStore
from . import schemas
from .api_tasks import require_visible_after
from .auth import Principal
from .deps import GatedRoute, Operator, Store, task_json

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], route_class=GatedRoute)


@router.post("/batch", status_code=201, response_model=schemas.BatchOut)
async def submit_batch(body: schemas.BatchBody, request: Request, store: Store, who: Operator,
                       idempotency_key: str | None = Header(None, include_in_schema=False),
                       ) -> JSONResponse:
    """Submit up to 1,000 tasks at once (201, the tasks in the order given). All are
    checked before any is written; a bad one is a 422 naming it (``tasks.3.argv``)
    and nothing is written. The body may be up to 16 MiB."""
    if idempotency_key is not None:  # taken silently, a retry would submit twice
        raise InvalidInput("a batch takes no Idempotency-Key: submit one task with it, or"
                           " retry a batch only when you know it was not written",
                           field="Idempotency-Key")
    top: int = request.app.state.settings.max_tail_bytes  # the largest output tail allowed
    tasks = await asyncio.get_running_loop().run_in_executor(
        None, _submit_all, store, body, who, top)
    return JSONResponse({"tasks": tasks}, status_code=201)


def _submit_all(store: SqlServerStore, body: schemas.BatchBody, who: Principal,
                max_tail: int) -> list[dict[str, Any]]:
    specs: list[TaskSpec] = []
    for index, item in enumerate(body.tasks):
        try:
            spec = spec_of(item, who.tenant)
            require_visible_after(store, who, spec.after)
        except UserError as exc:
            raise _at(exc, index) from None
        specs.append(spec)
    try:
        made = ops.submit_many(store, specs, by=who.by, max_tail=max_tail,
                               chunk=len(specs), label="tasks[{}]".format)
    except UserError as exc:
        raise _renamed(exc) from None
    return [task_json(t) for t in made]


def _at(exc: UserError, index: int) -> UserError:
    """An error about one spec as one naming it: ``tasks[3]: ...``, field ``tasks.3.F``."""
    return type(exc)(f"tasks[{index}]: {exc}", field=f"tasks.{index}.{exc.field or 'spec'}")


def _renamed(exc: UserError) -> UserError:
    """ops.submit_many names a spec's field ``N.F``: the body's is ``tasks.N.F``."""
    field = exc.field or ""
    index, dot, _ = field.partition(".")
    if dot and index.isdigit():
        return type(exc)(str(exc), field=f"tasks.{field}")
    return exc
