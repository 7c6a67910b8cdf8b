"""``taskyard stats``: what the store holds now, and what happened in a recent window,
in all and per queue and per tenant.

* tasks by status now (the trigger-kept counts);
* tasks submitted, started (claims) and finished (entries into ``succeeded``,
  ``failed`` or ``stopped``; a retried failure is one, and so is a cancel) per minute of
  the window, and in all;
* the queue wait of the starts and the run time of the ended runs: p50, p95 (nearest
  rank) and max;
* failures by reason;
* the running tasks' resident memory now, as their servers sampled it at their last
  heartbeat.

The store hands over the window's rows (``store/stats.py``, each found by an index or by
id); everything here is pure arithmetic over them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from .errors import InvalidInput
from .lifecycle import Status
from .model import iso
from .store.stats import StatsRows
from .validate import parse_duration

#: the shortest and the longest window (100 days: 144,000 minutes of per-minute counts)
MIN_WINDOW = 1.0
MAX_WINDOW = 100 * 86400.0
_ENDS = ("succeeded", "failed", "stopped")


class StatsSource(Protocol):
    def stats_rows(self, since: float, until: float, *, queue: str | None = ...,
                   tenant: str | None = ...) -> StatsRows: ...


class Timing(NamedTuple):
    """Seconds over the window: how many, p50, p95 and max (None when there are none)."""

    n: int
    p50: float | None
    p95: float | None
    max: float | None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.n, "p50": self.p50, "p95": self.p95, "max": self.max}


class Memory(NamedTuple):
    """The running (and paused) tasks' resident memory now, in KiB."""

    tasks: int  #: running or paused tasks
    sampled: int  #: of them, those with a sample (none yet right after a start)
    total_kib: int
    max_kib: int | None
    max_task: int | None  #: the task using ``max_kib``

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


class Group(NamedTuple):
    """The numbers of everything, one queue, or one tenant."""

    tasks: dict[str, int]  #: by status, now
    submitted: int
    started: int
    finished: dict[str, int]  #: ends by status (succeeded, failed, stopped)
    failures: dict[str, int]  #: failed ends by reason
    wait: Timing
    run: Timing
    memory: Memory

    def to_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "submitted": self.submitted, "started": self.started,
                "finished": sum(self.finished.values()), "ended": self.finished,
                "failures": self.failures, "wait": self.wait.to_json(),
                "run": self.run.to_json(), "memory": self.memory.to_json()}


class Stats(NamedTuple):
    since: float
    until: float
    queue: str | None  #: the filter, if any
    tenant: str | None  #: a tenant's token sees its tenant only
    #: per minute of the window, oldest first: the minute ``i`` is
    #: ``[since + 60 i, since + 60 (i + 1))`` (the last one may be shorter)
    per_minute: dict[str, list[int]]
    total: Group
    queues: dict[str, Group]
    tenants: dict[str, Group]
    #: (task id, queue, tenant, rss KiB or None, sampled at or None, kind) of the
    #: running tasks (a tracked task's memory is not sampled: taskyard did not start it)
    running: list[tuple[int, str, str, int | None, float | None, str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso(self.since), "until": iso(self.until),
            "window_seconds": round(self.until - self.since, 3),
            "queue": self.queue, "tenant": self.tenant,
            "per_minute": self.per_minute, **self.total.to_json(),
            "queues": {name: g.to_json() for name, g in self.queues.items()},
            "tenants": {name: g.to_json() for name, g in self.tenants.items()},
            "running": [{"id": i, "queue": q, "tenant": t, "rss_kib": kib,
                         "sampled_at": iso(at), "kind": kind}
                        for i, q, t, kib, at, kind in self.running],
        }


def collect(store: StatsSource, window: float, *, queue: str | None = None,
            tenant: str | None = None, now: float | None = None) -> Stats:
    """The statistics of the last ``window`` seconds (to ``now``)."""
    until = time.time() if now is None else now
    since = until - window
    return summarize(store.stats_rows(since, until, queue=queue, tenant=tenant), since, until,
                     queue=queue, tenant=tenant)


def window_of(since: str | float | timedelta) -> float:
    """A window's length in seconds from ``30s``/``10m``/``1h``/``1d`` (or a sum:
    ``1h30m``), a number of seconds, or a timedelta; from 1 second to 100 days."""
    if isinstance(since, timedelta):
        seconds = since.total_seconds()
    elif isinstance(since, str):
        seconds = parse_duration(since, "since")
    elif isinstance(since, bool) or not isinstance(since, int | float):
        raise InvalidInput(f"invalid window {since!r}: use e.g. 30s, 10m, 1h, 1d", field="since")
    else:
        seconds = float(since)
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:  # NaN too
        raise InvalidInput(f"window {since!r} out of range: from 1s to 100d", field="since")
    return seconds


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank ``p`` percentile (0 < p <= 1) of sorted values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def timing(values: list[float]) -> Timing:
    ordered = sorted(values)
    return Timing(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.95),
                  ordered[-1] if ordered else None)


class _Tally:
    """What one group gathers while the rows go by."""

    def __init__(self) -> None:
        self.tasks = {s.value: 0 for s in Status}
        self.submitted = self.started = 0
        self.finished = dict.fromkeys(_ENDS, 0)
        self.failures: dict[str, int] = {}
        self.waits: list[float] = []
        self.runs: list[float] = []
        self.memory: list[tuple[int, int | None]] = []  #: (task, KiB) of running tasks

    def group(self) -> Group:
        sampled = [(kib, task) for task, kib in self.memory if kib is not None]
        top = max(sampled, default=None)
        return Group(self.tasks, self.submitted, self.started, self.finished,
                     dict(sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))),
                     timing(self.waits), timing(self.runs),
                     Memory(len(self.memory), len(sampled), sum(k for k, _ in sampled),
                            top[0] if top else None, top[1] if top else None))


class _Tallies:
    """The tallies of everything, of each queue and of each tenant."""

    def __init__(self) -> None:
        self.total = _Tally()
        self.queues: dict[str, _Tally] = {}
        self.tenants: dict[str, _Tally] = {}

    def of(self, queue: str, tenant: str) -> tuple[_Tally, _Tally, _Tally]:
        q = self.queues.get(queue) or self.queues.setdefault(queue, _Tally())
        t = self.tenants.get(tenant) or self.tenants.setdefault(tenant, _Tally())
        return self.total, q, t


def summarize(rows: StatsRows, since: float, until: float, *, queue: str | None = None,
              tenant: str | None = None) -> Stats:
    """Aggregate one window's rows."""
    minutes = max(1, math.ceil((until - since) / 60))
    series = {kind: [0] * minutes for kind in ("submitted", "started", "finished")}

    def minute(at: float) -> int:
        return min(minutes - 1, max(0, int((at - since) // 60)))

    tallies = _Tallies()
    for t_name, q_name, status, n in rows.counts:
        for tally in tallies.of(q_name, t_name):
            tally.tasks[status] = tally.tasks.get(status, 0) + n
    for at, q_name, t_name in rows.submitted:
        series["submitted"][minute(at)] += 1
        for tally in tallies.of(q_name, t_name):
            tally.submitted += 1
    _events(rows, tallies, series, minute)
    for task_id, q_name, t_name, kib, _at, _kind in rows.running:
        for tally in tallies.of(q_name, t_name):
            tally.memory.append((task_id, kib))
    return Stats(since, until, queue, tenant, series, tallies.total.group(),
                 _groups(tallies.queues.items()), _groups(tallies.tenants.items()),
                 list(rows.running))


def _events(rows: StatsRows, tallies: _Tallies, series: dict[str, list[int]],
            minute: Any) -> None:
    for at, q_name, t_name, before, to, reason, seconds in rows.events:
        if to == "running":
            if before not in ("queued", None):  # a resume (None: a tracked task began)
                continue
            series["started"][minute(at)] += 1
            for tally in tallies.of(q_name, t_name):
                tally.started += 1
                if seconds is not None:
                    tally.waits.append(max(0.0, seconds))
            continue
        if to not in _ENDS:
            continue
        series["finished"][minute(at)] += 1
        for tally in tallies.of(q_name, t_name):
            tally.finished[to] += 1
            if to == "failed":
                key = reason or "unknown"
                tally.failures[key] = tally.failures.get(key, 0) + 1
            if seconds is not None:
                tally.runs.append(max(0.0, seconds))


def _groups(items: Iterable[tuple[str, _Tally]]) -> dict[str, Group]:
    return {name: tally.group() for name, tally in sorted(items)}
