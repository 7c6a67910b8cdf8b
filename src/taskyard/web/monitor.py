"""/health (no token: does the store answer?) and /metrics (Prometheus text, any
valid token; a tenant's token sees its tenant only).

Metrics come from the store, so every web process in front of one store reports
the same numbers: task counts and counters kept by triggers, wait and run time
histograms kept the same way, and the servers' heartbeats.
"""

from __future__ import annotations

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
INF = 1e300  #: the stored bound of the +Inf bucket


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


class _Collector:
    def __init__(self, store: SqlServerStore, tenant: str | None, lease: float) -> None:
        self.store, self.tenant, self.lease = store, tenant, lease

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        return [*self._counts(), *self._timings(), *self._servers()]

    def _counts(self) -> list[Any]:
        tasks = GaugeMetricFamily("taskyard_tasks", "Tasks by status now",
                                  labels=["tenant", "queue", "status"])
        entered = CounterMetricFamily("taskyard_tasks_entered", "Times tasks entered a"
                                      " status (status=submitted: tasks submitted)",
                                      labels=["tenant", "queue", "status"])
        for tenant, queue, status, now, ever in self.store.count_table():
            if self.tenant is not None and tenant != self.tenant:
                continue
            if status != "submitted":
                tasks.add_metric([tenant, queue, status], now)
            entered.add_metric([tenant, queue, status], ever)
        return [tasks, entered]

    def _timings(self) -> list[Any]:
        families = {kind: HistogramMetricFamily(
            f"taskyard_task_{kind}_seconds", help_text, labels=["tenant", "queue"])
            for kind, help_text in (("wait", "Time tasks waited queued before they started"),
                                    ("run", "Time from a task's start to its end"))}
        grouped: dict[tuple[str, str, str], list[tuple[float, int, float]]] = {}
        for tenant, queue, kind, le, n, total in self.store.timing_table():
            if self.tenant is None or tenant == self.tenant:
                grouped.setdefault((tenant, queue, kind), []).append((le, n, total))
        for (tenant, queue, kind), rows in grouped.items():
            if kind not in families:
                continue
            buckets, running, total_sum = [], 0, 0.0
            for le, n, total in sorted(rows):
                running += n
                total_sum += total
                buckets.append(("+Inf" if le >= INF else f"{le:g}", running))
            if buckets[-1][0] != "+Inf":
                buckets.append(("+Inf", running))
            families[kind].add_metric([tenant, queue], buckets, total_sum)
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


def _render(store: SqlServerStore, tenant: str | None, lease: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store, tenant, lease))
    return bytes(generate_latest(registry))


@router.get("/metrics", tags=["monitoring"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, who: Viewer) -> Response:
    """Prometheus metrics: tasks by tenant, queue and status; counters of tasks
    submitted and ending; wait and run time histograms; servers alive and their
    heartbeat age."""
    body = await run_in_threadpool(_render, store_of(request), who.tenant,
                                   request.app.state.settings.lease)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
