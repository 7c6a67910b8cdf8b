"""Bulk actions: a dry run shows how many tasks a filter matches and which (the first
50), and leaves a snapshot of that exact set; acting with the snapshot touches
exactly those tasks, acting without it touches what the filter matches then. At most
MAX_BULK tasks either way. Controls are written as requests without waiting for each
(the owning servers apply them); what cannot be done to a task is reported per task."""

from __future__ import annotations

import re
import secrets
from typing import Any

from .. import ops
from ..errors import NotFound, UserError
from ..store.sqlserver import SqlServerStore
from . import schemas
from .auth import Principal
from .deps import task_filter

MAX_BULK = 10_000
SHOWN = 50
SNAPSHOT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")  #: what secrets.token_urlsafe makes


def _matching(store: SqlServerStore, who: Principal, f: schemas.BulkFilter) -> list[int]:
    found = task_filter(who, status=f.status, queue=f.queue, tenant=f.tenant, name=f.name,
                        meta=f.meta, q=f.q)
    return [t.id for t in store.browse(found, limit=MAX_BULK).items]


def _act(store: SqlServerStore, who: Principal, action: str, task_id: int) -> None:
    task = store.get(task_id)
    who.require_visible(task.tenant, f"task {task_id}")
    if action == "kill":
        ops.kill(store, task_id, by=who.by, timeout=0)
    elif action == "pause":
        ops.pause(store, task_id, by=who.by, timeout=0)
    elif action == "resume":
        ops.resume(store, task_id, by=who.by, timeout=0)
    elif action == "restart":
        ops.restart(store, task_id, by=who.by)
    else:
        ops.remove(store, task_id, by=who.by)


def run_bulk(store: SqlServerStore, who: Principal, body: schemas.BulkBody) -> dict[str, Any]:
    if body.snapshot is not None and not body.dry_run:
        if not SNAPSHOT_ID.match(body.snapshot):  # none was ever made (NUL: a 503 on PG)
            raise NotFound("no such snapshot for this action (they last an hour): make a"
                           " new dry run", field="snapshot")
        ids = store.snapshot(body.snapshot, who.token.id, body.action)
    else:
        ids = _matching(store, who, body.filter)
    result: dict[str, Any] = {"action": body.action, "dry_run": body.dry_run,
                              "count": len(ids), "ids": ids[:SHOWN], "snapshot": None,
                              "done": [], "failed": {}}
    if body.dry_run:
        result["snapshot"] = secrets.token_urlsafe(16)
        store.add_snapshot(result["snapshot"], who.token.id, body.action, ids)
        return result
    for task_id in ids:
        try:
            _act(store, who, body.action, task_id)
        except UserError as exc:
            result["failed"][str(task_id)] = str(exc)
        else:
            result["done"].append(task_id)
    return result
