"""/api/v1: queues, schedules, tenants, servers and tokens.

Reading needs a viewer; changing a tenant's schedules needs an admin of that tenant
(or of every tenant); queues, tenants, servers and tokens are shared by every tenant,
so changing them, and seeing servers and tokens, needs an admin token without a tenant.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from .. import access, cron, ops, validate
from ..lifecycle import Status
from ..model import Schedule, iso
from ..specjson import spec_of
from . import schemas
from .auth import Principal
from .deps import MAX_ID, Admin, GatedRoute, Store, Viewer

router = APIRouter(prefix="/api/v1", route_class=GatedRoute)


# -- queues ---------------------------------------------------------------------------


@router.get("/queues", response_model=list[schemas.QueueOut], tags=["queues"])
def queues(store: Store, who: Viewer) -> list[dict[str, Any]]:
    """Queues with their limit, pause state and task counts per status (a tenant's token
    counts its own tasks only)."""
    return store.queue_table(who.tenant)


@router.patch("/queues/{name}", response_model=schemas.QueueOut, tags=["queues"])
def patch_queue(name: str, body: schemas.QueuePatch, store: Store, who: Admin,
                request: Request) -> dict[str, Any]:
    """Set ``parallel`` (null: no limit) and/or ``paused``."""
    who.require_global()
    changes = ops.QueueChanges(store, name)  # every field checked before any is written
    if body.limits is not None:
        given = body.limits
        changes.limits({k: getattr(given, k) for k in given.model_fields_set}, "limits.")
    _hooks_and_retention(changes, body)
    bounds = {k: getattr(body, k) for k in ("output_head", "output_tail")
              if k in body.model_fields_set}
    if bounds:
        changes.output(head=bounds.get("output_head", ...),
                       tail=bounds.get("output_tail", ...),
                       max_tail=request.app.state.settings.max_tail_bytes)
    if "rate" in body.model_fields_set:
        changes.rate(body.rate)
    if "parallel" in body.model_fields_set:
        changes.parallel(body.parallel)
    changes.apply()
    if body.paused is True:
        ops.pause_queue(store, name)
    elif body.paused is False:
        ops.resume_queue(store, name)
    found = next((q for q in store.queue_table() if q["name"] == name), None)
    if found is None:  # no tasks and nothing set (an empty patch): it was a 500
        found = {"name": name, "paused": False, "parallel": None,
                 "tasks": {s.value: 0 for s in Status}}
    return found


def _hooks_and_retention(changes: ops.QueueChanges, body: schemas.QueuePatch) -> None:
    """The fields given, as queue set takes them (null: back to the server's)."""
    given = body.model_fields_set
    if "on_finish" in given or "on_finish_url" in given:
        argv = None
        if "on_finish" in given:
            argv = json.dumps(body.on_finish) if body.on_finish is not None else ""
        url = None
        if "on_finish_url" in given:
            url = ("none" if body.on_finish_url == "" else body.on_finish_url or "")
        changes.hooks(on_finish=argv, url=url)
    if "retain" in given or "retain_count" in given:
        retain = None
        if "retain" in given:
            retain = "" if body.retain is None else str(body.retain)
        count = None
        if "retain_count" in given:
            count = "" if body.retain_count is None else str(body.retain_count)
        changes.retention(retain=retain, retain_count=count)


# -- schedules ------------------------------------------------------------------------


def _schedule_json(store: Store, sched: Schedule, now: float) -> dict[str, Any]:
    data = sched.to_json()
    nexts, after = [], max(now, sched.last_tick)
    if not sched.paused:
        for _ in range(5):
            after = cron.next_fire(sched.expr, sched.tz, after)
            nexts.append(iso(after))
    data["next_five"] = nexts
    last = store.last_fired(sched.name)
    data["last_task"] = ({"id": last.id, "status": last.status.value,
                          "fire_at": iso(last.fire_at), "reason": last.reason}
                         if last is not None else None)
    return data


def _visible_schedule(store: Store, who: Principal, name: str) -> Schedule:
    sched = store.get_schedule(name)
    who.require_visible(sched.tenant, f"schedule {name!r}", field="name")
    return sched


@router.get("/schedules", response_model=list[schemas.ScheduleOut], tags=["schedules"])
def schedules(store: Store, who: Viewer) -> list[dict[str, Any]]:
    now = time.time()
    return [_schedule_json(store, s, now) for s in store.schedules() if who.sees(s.tenant)]


@router.post("/schedules", status_code=201, response_model=schemas.ScheduleOut,
             tags=["schedules"])
def add_schedule(body: schemas.ScheduleBody, store: Store, who: Admin) -> dict[str, Any]:
    """Submit ``task`` at every tick of ``expr`` (5-field cron or @alias) in zone ``tz``."""
    spec = spec_of(body.task, who.tenant)
    sched = ops.add_schedule(store, body.name, body.expr, spec, tz=body.tz,
                             catch_up=body.catch_up, max_lag=body.max_lag, paused=body.paused)
    return _schedule_json(store, sched, time.time())


@router.get("/schedules/{name}", response_model=schemas.ScheduleOut, tags=["schedules"])
def get_schedule(name: str, store: Store, who: Viewer) -> dict[str, Any]:
    return _schedule_json(store, _visible_schedule(store, who, name), time.time())


@router.patch("/schedules/{name}", response_model=schemas.ScheduleOut, tags=["schedules"])
def patch_schedule(name: str, body: schemas.SchedulePatch, store: Store,
                   who: Admin) -> dict[str, Any]:
    """Pause (ticks pass unfired) or resume (the next tick is the first after now)."""
    _visible_schedule(store, who, name)
    return _schedule_json(store, ops.pause_schedule(store, name, body.paused), time.time())


@router.delete("/schedules/{name}", status_code=204, response_class=Response,
               tags=["schedules"])
def delete_schedule(name: str, store: Store, who: Admin) -> Response:
    """Fire no more ticks (the tasks it fired stay)."""
    _visible_schedule(store, who, name)
    store.remove_schedule(name)
    return Response(status_code=204)


@router.post("/schedules/{name}/run", status_code=201, response_model=schemas.TaskOut,
             tags=["schedules"])
def run_schedule(name: str, store: Store, who: Admin) -> dict[str, Any]:
    """Fire the schedule's task once, now (its ticks are not affected)."""
    _visible_schedule(store, who, name)
    return ops.run_schedule(store, name, by=who.by).to_json()


# -- tenants --------------------------------------------------------------------------


@router.get("/tenants", response_model=list[schemas.TenantOut], tags=["tenants"])
def tenants(store: Store, who: Viewer) -> list[dict[str, Any]]:
    return [t for t in store.tenants() if who.sees(str(t["name"]))]


@router.post("/tenants", status_code=201, response_model=schemas.TenantOut, tags=["tenants"])
def add_tenant(body: schemas.TenantBody, store: Store, who: Admin) -> dict[str, Any]:
    who.require_global()
    validate.required_name(body.name, "name")
    return ops.add_tenant(store, body.name, enabled=body.enabled, run_as=body.run_as,
                          parallel=body.parallel)


@router.patch("/tenants/{name}", response_model=schemas.TenantOut, tags=["tenants"])
def patch_tenant(name: str, body: schemas.TenantPatch, store: Store,
                 who: Admin) -> dict[str, Any]:
    """Enable or disable a tenant, set its login (``run_as``) or its ``parallel`` limit."""
    who.require_global()
    given = body.model_fields_set
    tenant = store.update_tenant(name)  # as it is: an unknown tenant is not found
    if body.enabled is True:
        tenant = ops.enable_tenant(store, name)
    elif body.enabled is False:
        tenant = ops.disable_tenant(store, name)
    if "run_as" in given:
        tenant = store.update_tenant(name, run_as=validate.check_user(body.run_as))
    if "parallel" in given:
        tenant = ops.set_tenant_parallel(store, name, body.parallel)
    return tenant


# -- servers and tokens ------------------------------------------------------------------


@router.get("/servers", response_model=list[schemas.ServerOut], tags=["servers"])
def servers(request: Request, store: Store, who: Viewer) -> list[dict[str, Any]]:
    """Servers alive, and those stopped or fenced in the last hour."""
    who.require_global()
    now, lease = time.time(), request.app.state.settings.lease
    found = []
    for sid, host, pid, slots, started, beat, stopped, stop, running in \
            store.server_table(now - 3600):
        found.append({"id": sid, "host": host, "pid": pid, "slots": slots,
                      "started_at": iso(started), "heartbeat_at": iso(beat),
                      "heartbeat_age": round(max(0.0, now - beat), 3), "running": running,
                      "alive": stopped is None and beat >= now - lease,
                      "fenced": stop == "fenced"})
    return found


@router.get("/tokens", response_model=list[schemas.TokenOut], tags=["tokens"])
def tokens(store: Store, who: Admin) -> list[dict[str, Any]]:
    who.require_global()
    return [t.to_json() for t in store.tokens()]


@router.post("/tokens", status_code=201, response_model=schemas.TokenCreated, tags=["tokens"])
def add_token(body: schemas.TokenBody, store: Store, who: Admin) -> dict[str, Any]:
    """A new token; its secret is in this answer only."""
    who.require_global()
    expires = validate.parse_duration(body.expires, "expires") if body.expires else None
    token, secret = access.create_token(store, body.role, tenant=body.tenant, name=body.name,
                                        expires_in=expires, by=who.by)
    return {"id": token.id, "name": token.name, "role": token.role, "tenant": token.tenant,
            "token": secret, "expires_at": iso(token.expires_at)}


@router.delete("/tokens/{token_id}", response_model=schemas.TokenOut, tags=["tokens"])
def revoke_token(token_id: Annotated[int, Path(ge=1, le=MAX_ID)], store: Store,
                 who: Admin) -> dict[str, Any]:
    """Refuse the token from now on, and end the panel sessions opened with it."""
    who.require_global()
    return store.revoke_token(token_id).to_json()
