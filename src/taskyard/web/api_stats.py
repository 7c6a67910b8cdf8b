"""GET /api/v1/stats: what ``taskyard stats`` shows, for a viewer. A tenant's token sees
its tenant's numbers only (asking for another tenant finds nothing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from .. import stats, validate
from .deps import GatedRoute, Store, Viewer, task_filter
from .schemas import Out

router = APIRouter(prefix="/api/v1", route_class=GatedRoute)


class TimingOut(Out):
    count: int
    p50: float | None
    p95: float | None
    max: float | None


class MemoryOut(Out):
    tasks: int
    sampled: int
    total_kib: int
    max_kib: int | None
    max_task: int | None


class GroupOut(Out):
    tasks: dict[str, int]
    submitted: int
    started: int
    finished: int
    ended: dict[str, int]
    failures: dict[str, int]
    wait: TimingOut
    run: TimingOut
    memory: MemoryOut


class RunningOut(Out):
    id: int
    queue: str
    tenant: str
    rss_kib: int | None
    sampled_at: str | None
    kind: str  #: command | function | tracked


class StatsOut(GroupOut):
    since: str
    until: str
    window_seconds: float
    queue: str | None
    tenant: str | None
    per_minute: dict[str, list[int]]
    queues: dict[str, GroupOut]
    tenants: dict[str, GroupOut]
    running: list[RunningOut]


@router.get("/stats", response_model=StatsOut, tags=["monitoring"])
def get_stats(store: Store, who: Viewer,
              since: str = Query("1h", max_length=40,
                                 description="the window: 30s, 10m, 1h, 1d... (1s to 100d)"),
              queue: str | None = Query(None, description="only this queue's tasks"),
              tenant: str | None = Query(None, description="only this tenant's tasks"),
              ) -> dict[str, Any]:
    """Tasks by status now; submitted, started and finished per minute of the window;
    queue wait and run time p50/p95/max; failures by reason; the running tasks' memory
    (sampled by their servers at each heartbeat); in all, per queue and per tenant."""
    window = stats.window_of(since)
    f = task_filter(who, queue=validate.check_name(queue, "queue"),
                    tenant=validate.check_name(tenant, "tenant"))
    found = stats.collect(store, window, queue=f.queue, tenant=f.tenant)
    data = found.to_json()
    data["tenant"] = tenant if tenant is not None else who.tenant  # never the no-match mark
    return data
