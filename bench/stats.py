"""``taskyard stats`` on a store of a million tasks (SQLite; the goal: under 200 ms for
the default window of an hour), and on 100,000 tasks on PostgreSQL (informational).

The store is ``web_fill``'s (bulk SQL through the store's triggers, untimed; cached in
``bench/.cache``): a task every 0.5 s over 5.8 days, so that the last hour holds 7,200
submits, the starts and ends among them, and the million older tasks are what the
lookups by id and time must skip. A cached file was filled some time ago: the window ends a
minute after its newest task, where it ended when the store was filled.

    .venv/bin/python bench/stats.py [--quick]     # --quick: 100,000 tasks, no PostgreSQL
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import common
import web_fill
from common import Section
from taskyard import stats
from taskyard.store import open_store

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
GOAL_MS = 200.0
WINDOW = 3600.0


def _window_end(store: Any) -> float:
    with store._read_tx() as cur:
        cur.execute("SELECT MAX(created_at) FROM tasks")
        return float(cur.fetchone()[0]) + 60


def _timed(store: Any, samples: int, **kw: Any) -> tuple[list[float], stats.Stats]:
    """Milliseconds of ``samples`` calls of stats.collect (after 3 untimed)."""
    now = _window_end(store)
    found = stats.collect(store, kw.pop("window", WINDOW), now=now, **kw)
    window = found.until - found.since
    for _ in range(2):
        stats.collect(store, window, now=now, **kw)
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        stats.collect(store, window, now=now, **kw)
        took.append((time.perf_counter() - started) * 1000)
    return took, found


def _measure(s: Section, label: str, store: Any, samples: int) -> list[float]:
    took, found = _timed(store, samples)
    s.add(f"{label}: stats, last 1h, p50", common.median(took), "ms",
          f"{found.total.submitted:,} submitted, {found.total.started:,} started,"
          f" {sum(found.total.finished.values()):,} ended in the window")
    s.add(f"{label}: stats, last 1h, p95", common.quantile(took, 0.95), "ms")
    for name, kw in (("--queue emails", {"queue": "emails"}),
                     ("--tenant acme", {"tenant": "acme"}),
                     ("last 1d", {"window": 86400.0})):
        more, got = _timed(store, max(3, samples // 4), **kw)
        s.add(f"{label}: stats {name}, p50", common.median(more), "ms",
              f"{got.total.submitted:,} submitted in the window")
    return took


def run(quick: bool, repeat: int) -> Section:
    n = 100_000 if quick else 1_000_000
    samples = 10 if quick else 10 * max(2, repeat)
    s = Section(f"stats: taskyard stats on a {n:,}-task store (lower is better)")
    with common.tempdir("stats") as tmp:
        filled = web_fill.sqlite_store(n, tmp / "taskyard.db")
        s.notes.append(f"SQLite store filled in {filled.seconds:.0f} s (0: cached),"
                       f" copied in {filled.copy_seconds:.1f} s; untimed")
        store = open_store(filled.location)
        try:
            took = _measure(s, "sqlite", store, samples)
        finally:
            store.close()
    s.ratio(f"sqlite stats p95 / {GOAL_MS:.0f} ms, {n:,} tasks",
            common.quantile(took, 0.95) / GOAL_MS, "<= 1")
    if not quick:
        _postgres(s, 100_000, samples)
    return s


def _postgres(s: Section, n: int, samples: int) -> None:
    try:
        with web_fill.postgres_store(DSN, n) as filled:
            store = open_store(filled.location)
            try:
                _measure(s, f"postgres {n // 1000}k", store, samples)
            finally:
                store.close()
    except Exception as exc:  # no PostgreSQL here: the SQLite goal stands alone
        s.notes.append(f"PostgreSQL left out: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    print(common.render(run("--quick" in sys.argv, 1)))
