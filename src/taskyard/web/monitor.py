"""/health (no token: does the store answer?) and /metrics (Prometheus text, any
valid token; a tenant's token sees its tenant only).

Metrics come from the store, so every web process in front of one store reports
the same numbers: task counts and counters kept by triggers, wait and run time
histograms kept the same way, and the servers' heartbeats.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..errors import StoreError
from ..store.sqlserver import SqlServerStore
from .deps import GatedRoute, Viewer, store_of

router = APIRouter(route_class=GatedRoute)


@router.get("/health", tags=["monitoring"])
async def health(request: Request) -> Response:
    """200 when the store answers, 503 (saying why) when it does not. No token."""
    store = store_of(request)
    try:
        await run_in_threadpool(store.instances)
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "store": store.location,
                             "detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok", "store": store.location})


BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 86400.0)  #: seconds; then +Inf


class EventMetrics:
    """Counters and histograms of this web process's lifetime, read from the events
    table (each scrape reads the events since the last one): tasks that entered each
    status (``submitted``: new tasks), how long claimed tasks waited queued, how long
    finished runs ran. Kept here rather than by triggers, which would cost every task's
    transitions (the counts per status now do come from triggers: a page needs them
    at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.after: int | None = None  #: the last event counted
        self.entered: dict[tuple[str, str, str], int] = {}
        #: (tenant, queue, kind) -> (counts per bucket, +Inf count, sum)
        self.timings: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}

    def update(self, store: SqlServerStore) -> None:
        with self.lock:
            if self.after is None:
                self.after = store.last_event()
                return
            while True:
                found = store.metric_events(self.after)
                for event_id, tenant, queue, before, to, seconds in found:
                    self.after = event_id
                    self._count(tenant, queue, "submitted" if before is None else None)
                    self._count(tenant, queue, to)
                    if seconds is not None:
                        kind = "wait" if to == "running" else "run"
                        self._observe((tenant, queue, kind), max(0.0, seconds))
                if len(found) < 100_000:
                    return

    def _count(self, tenant: str, queue: str, status: str | None) -> None:
        if status is not None:
            key = (tenant, queue, status)
            self.entered[key] = self.entered.get(key, 0) + 1

    def _observe(self, key: tuple[str, str, str], seconds: float) -> None:
        counts, total = self.timings.setdefault(key, ([0] * (len(BUCKETS) + 1), [0.0]))
        index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
        counts[index] += 1
        total[0] += seconds


class _Collector:
    def __init__(self, store: SqlServerStore, events: EventMetrics, tenant: str | None,
                 lease: float) -> None:
        self.store, self.events, self.tenant, self.lease = store, events, tenant, lease

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self.events.update(self.store)
        return [*self._counts(), *self._timings(), *self._servers()]

    def _mine(self, tenant: str) -> bool:
        return self.tenant is None or tenant == self.tenant

    def _counts(self) -> list[Any]:
        tasks = GaugeMetricFamily("taskyard_tasks", "Tasks by status now",
                                  labels=["tenant", "queue", "status"])
        entered = CounterMetricFamily("taskyard_tasks_entered", "Tasks that entered a status"
                                      " since this web process started counting"
                                      " (status=submitted: new tasks)",
                                      labels=["tenant", "queue", "status"])
        for tenant, queue, status, now in self.store.count_table():
            if self._mine(tenant):
                tasks.add_metric([tenant, queue, status], now)
        with self.events.lock:
            for (tenant, queue, status), n in sorted(self.events.entered.items()):
                if self._mine(tenant):
                    entered.add_metric([tenant, queue, status], n)
        return [tasks, entered]

    def _timings(self) -> list[Any]:
        families = {kind: HistogramMetricFamily(
            f"taskyard_task_{kind}_seconds", help_text, labels=["tenant", "queue"])
            for kind, help_text in (("wait", "Time tasks waited queued before they started"),
                                    ("run", "Time from a task's start to its end"))}
        with self.events.lock:
            for (tenant, queue, kind), (counts, total) in sorted(self.events.timings.items()):
                if not self._mine(tenant):
                    continue
                buckets, running = [], 0
                for bound, n in zip((*BUCKETS, None), counts, strict=True):
                    running += n
                    buckets.append(("+Inf" if bound is None else f"{bound:g}", running))
                families[kind].add_metric([tenant, queue], buckets, total[0])
        return list(families.values())

    def _servers(self) -> list[Any]:
        if self.tenant is not None:
            return []
        now = time.time()
        alive = GaugeMetricFamily("taskyard_servers_alive", "Servers heartbeating within"
                                  " their lease")
        age = GaugeMetricFamily("taskyard_server_heartbeat_age_seconds", "Seconds since a"
                                " server's last heartbeat", labels=["server", "host"])
        count = 0
        for sid, host, _pid, _slots, _started, beat, stopped, _stop, _running in \
                self.store.server_table(now - 3600):
            if stopped is None:
                age.add_metric([sid, host], max(0.0, now - beat))
                count += beat >= now - self.lease
        alive.add_metric([], count)
        return [alive, age]


def _render(store: SqlServerStore, events: EventMetrics, tenant: str | None,
            lease: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store, events, tenant, lease))
    return bytes(generate_latest(registry))


@router.get("/metrics", tags=["monitoring"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, who: Viewer) -> Response:
    """Prometheus metrics: tasks by tenant, queue and status; counters of tasks
    submitted and ending; wait and run time histograms; servers alive and their
    heartbeat age."""
    body = await run_in_threadpool(_render, store_of(request), request.app.state.events,
                                   who.tenant, request.app.state.settings.lease)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
