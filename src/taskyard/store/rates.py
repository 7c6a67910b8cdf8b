"""Rate limits in the store: each start of a rate-limited task is a ``rate_starts`` row
(its key, its time), written in the claiming transaction; a key's window is counted
there too, so every server sharing the store sees the same starts.

Claims take turns (SQLite's write lock, PostgreSQL's claim lock), so two servers
cannot both count a free start. ``rate_keys`` keeps, per key, the longest period any
task or queue declared for it: starts older than that can never count again and are
deleted when the key starts something.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Task
from ..rates import Rate, Window, loads, queue_key, task_key
from .admit import Candidate, Usage
from .sql import Cursor


def window(cur: Cursor, key: str, rate: Rate, now: float) -> Window:
    """The starts of ``key`` in the ``rate.period`` seconds before ``now``; when full, the
    time the oldest start that keeps it full leaves the window."""
    since = now - rate.period
    cur.execute("SELECT COUNT(*) FROM rate_starts WHERE key=? AND at > ?", (key, since))
    starts = int(cur.fetchone()[0])
    if starts < rate.starts:
        return Window(key, rate, starts, None)
    cur.execute("SELECT at FROM rate_starts WHERE key=? AND at > ? ORDER BY at DESC"
                " LIMIT 1 OFFSET ?", (key, since, rate.starts - 1))
    return Window(key, rate, starts, float(cur.fetchone()[0]) + rate.period)


def declare(cur: Cursor, key: str, rate: Rate) -> None:
    """A task or queue starts under ``rate`` for ``key``: keep its starts that long."""
    cur.execute("INSERT INTO rate_keys (key, period) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                " SET period = CASE WHEN excluded.period > rate_keys.period"
                " THEN excluded.period ELSE rate_keys.period END", (key, rate.period))


def load_queue_windows(cur: Cursor, usage: Usage, queue_rates: dict[str, str],
                       now: float) -> None:
    """The windows of the queues that have a rate (at the start of a claim)."""
    for queue, stored in queue_rates.items():
        rate = loads(stored)
        if rate is not None:
            usage.queue_rates[queue] = rate
            usage.add_window(window(cur, queue_key(queue), rate, now))


def load_task_windows(cur: Cursor, usage: Usage, found: Iterable[Candidate],
                      now: float) -> None:
    """The windows of the candidates' own keys not counted yet in this claim."""
    for c in found:
        if c.rate_key is None or c.rate is None or usage.has_window(task_key(c.rate_key),
                                                                    c.rate):
            continue
        rate = loads(c.rate)
        if rate is not None:
            usage.add_window(window(cur, task_key(c.rate_key), rate, now))


def record_starts(cur: Cursor, usage: Usage, chosen: Iterable[Candidate], now: float) -> None:
    """Write the starts of the rate-limited tasks claimed, drop starts no window can count
    any more, and count again the windows this claim filled (for ``usage.wake_at``)."""
    keys = [key for c in chosen for key in usage.rate_keys(c)]
    if not keys:
        return
    cur.executemany("INSERT INTO rate_starts (key, at) VALUES (?, ?)", [(k, now) for k in keys])
    for key in sorted(set(keys)):
        cur.execute("DELETE FROM rate_starts WHERE key=? AND at <= ? - COALESCE("
                    "(SELECT period FROM rate_keys WHERE key=?), 604800.0)", (key, now, key))
    for w in usage.filled():
        usage.add_window(window(cur, w.key, w.rate, now))


def task_windows(cur: Cursor, task: Task, queue_rate: str | None,
                 now: float) -> tuple[Window, ...]:
    """The windows a start of ``task`` would count in: its queue's, its own key's."""
    found = []
    rate = loads(queue_rate)
    if rate is not None:
        found.append(window(cur, queue_key(task.queue), rate, now))
    if task.rate_limit is not None:
        found.append(window(cur, task_key(task.rate_limit.key), task.rate_limit.rate, now))
    return tuple(found)
