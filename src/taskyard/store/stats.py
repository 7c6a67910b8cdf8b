"""What ``taskyard stats`` reads: the kept counts per status, and the rows of one time
window, each found through an index, so that the cost is the window's rows, not the
store's.

* tasks submitted: found by their ids, which follow their submit times (give or take
  the moment between reading the clock and the INSERT, in one transaction, and the
  clocks of the hosts sharing a PostgreSQL store): a binary search over the ids (about
  20 primary-key look-ups) finds the first task submitted ``SLACK`` seconds before the
  window, and the range from there is read with its times checked exactly. Exact while
  no task's time is more than ``SLACK`` out of its id's order. An index on
  ``created_at`` would not need that, at a price every submit pays: up to 5 % of the
  CPU of a task's three store transactions, measured on SQLite;
* starts and ends: ``events_stats``, a partial index on ``events.at`` of the events into
  ``running`` and into an end status (a claim is ``queued -> running``; a resume is
  ``paused -> running`` and is left out by the caller). An event's wait (a claim) is its
  time minus the event before it, which put the task in ``queued``; a run's time is the
  end minus its attempt's start, as the metrics read them;
* memory: the running and paused tasks (``tasks_by_status``) and their attempts'
  ``rss_kib``, which the owning server samples at every heartbeat (``record_rss``).

Aggregating (per minute, percentiles, per queue and tenant) is ``taskyard/stats.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .browse import BrowseStore
from .filters import SLACK, first_task
from .sql import EVENT_SECONDS, NOT_A_NOTE

#: the events ``events_stats`` holds (its WHERE, word for word, so planners use it)
STATS_EVENTS = "('running', 'succeeded', 'failed', 'stopped')"


class StatsRows(NamedTuple):
    """The raw material of one window, ``queue``/``tenant`` filters applied."""

    #: (tenant, queue, status, tasks now)
    counts: list[tuple[str, str, str, int]]
    #: (created_at, queue, tenant) of tasks submitted in the window
    submitted: list[tuple[float, str, str]]
    #: (at, queue, tenant, from_status, to_status, reason, seconds): claims and ends in
    #: the window; seconds is a claim's wait or an ended run's time, else None
    events: list[tuple[float, str, str, str | None, str, str | None, float | None]]
    #: (task id, queue, tenant, rss_kib, rss_at, kind) of every running or paused task
    running: list[tuple[int, str, str, int | None, float | None, str]]


class StatsStore(BrowseStore):
    """Statistics of a window (mixed into the SQL stores)."""

    def stats_rows(self, since: float, until: float, *, queue: str | None = None,
                   tenant: str | None = None) -> StatsRows:
        """Everything ``stats`` needs of ``[since, until)``, in one read transaction.

        The window's rows are read whole and filtered here: with a queue or tenant in
        the SQL, planners without statistics on that condition (SQLite always,
        PostgreSQL on an expression) walked every task of the queue instead of the
        window (PostgreSQL: 60 ms for 100,000 tasks against 4 ms)."""
        def mine(q: str, t: str) -> bool:
            return (queue is None or q == queue) and (tenant is None or t == tenant)

        with self._read_tx() as cur:
            counts = self._stats_counts(cur, queue, tenant)
            submitted = self._stats_submitted(cur, since, until)
            events = self._stats_events(cur, since, until)
            running = self._stats_running(cur)
        return StatsRows(counts, [r for r in submitted if mine(r[1], r[2])],
                         [r for r in events if mine(r[1], r[2])],
                         [r for r in running if mine(r[1], r[2])])

    def _stats_counts(self, cur: Any, queue: str | None, tenant: str | None,
                      ) -> list[tuple[str, str, str, int]]:
        where, params = "", []
        for column, value in (("queue", queue), ("tenant", tenant)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        cur.execute(f"SELECT tenant, queue, status, SUM(n) FROM {self.COUNTS}"
                    f" WHERE 1 = 1{where} GROUP BY tenant, queue, status", params)
        return [(t, q, s, int(n)) for t, q, s, n in cur.fetchall() if int(n)]

    def _stats_submitted(self, cur: Any, since: float, until: float,
                         ) -> list[tuple[float, str, str]]:
        first = first_task(cur, since - SLACK)
        cur.execute("SELECT created_at, queue, tenant FROM tasks"
                    f" WHERE id >= {first:d} AND created_at >= ? AND created_at < ?",
                    (since, until))
        return [(float(at), q, t) for at, q, t in cur.fetchall()]

    def _stats_events(self, cur: Any, since: float, until: float,
                      ) -> list[tuple[float, str, str, str | None, str, str | None, float | None]]:
        cur.execute(
            "SELECT e.at, t.queue, t.tenant, e.from_status, e.to_status, e.detail,"
            f" {EVENT_SECONDS} FROM events e JOIN tasks t ON t.id = e.task_id"
            f" WHERE e.at >= ? AND e.at < ? AND e.to_status IN {STATS_EVENTS}"
            f" AND {NOT_A_NOTE}",
            (since, until))
        return [(float(at), q, t, f, to, r, float(d) if d is not None else None)
                for at, q, t, f, to, r, d in cur.fetchall()]

    def _stats_running(self, cur: Any,
                       ) -> list[tuple[int, str, str, int | None, float | None, str]]:
        cur.execute("SELECT t.id, t.queue, t.tenant, a.rss_kib, a.rss_at, CASE WHEN"
                    " t.tracked <> 0 THEN 'tracked' WHEN t.function IS NOT NULL THEN"
                    " 'function' ELSE 'command' END FROM tasks t"
                    " LEFT JOIN attempts a ON a.task_id = t.id AND a.epoch = t.epoch"
                    " WHERE t.status IN ('running', 'paused') ORDER BY t.id")
        return [(int(i), q, t, int(k) if k is not None else None,
                 float(at) if at is not None else None, kind)
                for i, q, t, k, at, kind in cur.fetchall()]

    def record_rss(self, owner: str, samples: Sequence[tuple[int, int, int]],
                   now: float) -> None:
        """The resident memory (KiB) of the owner's running attempts, as (task id, epoch,
        KiB); fenced by the owner, and by the attempt still being open."""
        if not samples:
            return
        with self._tx() as cur:
            cur.executemany("UPDATE attempts SET rss_kib=?, rss_at=? WHERE task_id=?"
                            " AND epoch=? AND owner=? AND finished_at IS NULL",
                            [(kib, now, task_id, epoch, owner)
                             for task_id, epoch, kib in samples])
