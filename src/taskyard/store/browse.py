"""Reading a store of millions the way a person browses it: newest first, filtered,
a page at a time (keyset paging by id, stable while tasks are added), counts per
status from the trigger-kept ``task_counts``, and the facts that explain why a
task waits.

The filters (``TaskFilter``) and how each finds its rows: ``store/filters.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from .. import limits
from ..lifecycle import Status
from ..model import Task
from ..rates import Window, rate_text
from . import rows
from .filters import FilterSql, TaskFilter
from .rates import task_windows
from .sql import ACTIVE_IN, EVENT_SECONDS, NOT_A_NOTE, Cursor

#: Queued tasks ahead of a waiting one are counted up to this many (then: "over").
AHEAD_CAP = 1000
#: Matching tasks a filter the kept counts cannot answer counts at most, newest first
#: (then its counts are partial): counting a million one by one took 0.2-1.1 s.
COUNT_CAP = 10_000


class Page(NamedTuple):
    items: list[Task]
    next_before: int | None  #: pass as ``before`` for the next page; None: last page
    partial: bool  #: never true since schema 25 (kept for the API's shape)


class Waiting(NamedTuple):
    """What a queued or scheduled task waits for, as stored facts (``why.py`` words them)."""

    task: Task
    after: list[tuple[int, str]]  #: (task id, status) of --after tasks not succeeded
    queue_paused: bool
    queue_parallel: int | None
    queue_active: list[int]  #: running or paused tasks of its queue
    queue_ahead: int  #: queued tasks of its queue claimed before it (AHEAD_CAP + 1: more)
    tenant_enabled: bool
    tenant_parallel: int | None
    tenant_active: int
    mutex_holder: int | None  #: the active task holding its mutex
    servers: list[tuple[str, str, float, int]]  #: (id, host, heartbeat_at, slots) not stopped
    running: int  #: tasks running or paused on all servers
    rates: tuple[Window, ...] = ()  #: the rate windows a start of it counts in


class BrowseStore(FilterSql):
    """Listing, counting and explaining (mixed into the SQL stores)."""

    #: rows of task_counts (PostgreSQL adds the deltas its triggers append)
    COUNTS = "task_counts"

    def browse(self, f: TaskFilter, *, before: int | None = None,
               limit: int | None = 50) -> Page:
        """Up to ``limit`` tasks (None: all) matching ``f`` with ids below ``before``,
        newest first."""
        with self._read_tx() as cur:
            sql, params, partial = self.browse_sql(cur, f, before, limit)
            cur.execute(sql, params)
            fetched = cur.fetchall()
        # made into tasks after the commit: on a loaded machine, building thousands of
        # them inside the transaction left it idle past PostgreSQL's hold limit
        found = [rows.task(r) for r in fetched]
        more = limit is not None and len(found) > limit
        items = found[:limit]
        return Page(items, items[-1].id if more and items else None, partial)

    def list_tasks(self, *, status: Sequence[Status] = (), queue: str | None = None,
                   limit: int | None = None) -> list[Task]:
        """Tasks oldest first (with ``limit``: the newest that many)."""
        page = self.browse(TaskFilter(status=tuple(status), queue=queue), limit=limit)
        return list(reversed(page.items))

    def browse_sql(self, cur: Cursor, f: TaskFilter, before: int | None, limit: int | None,
                   ) -> tuple[str, list[Any], bool]:
        """The query of ``browse`` (one more row than ``limit``: is there a next page?),
        its parameters, and whether it is partial (never, since schema 25: metadata and
        text have indexes); the query-plan test explains it."""
        q = self._where(cur, f)
        where, params = list(q.where), list(q.params)
        if before is not None:
            where.append(f"{q.order} < ?")
            params.append(before)
        sql = f"SELECT {rows.TASK_COLUMNS} FROM {q.source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {q.order} DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit + 1)
        return sql, params, False

    def count_tasks(self, f: TaskFilter) -> tuple[dict[str, int], bool]:
        """Tasks matching ``f`` (its status aside) per status, and whether the count is
        partial: a filter the kept counts cannot answer counts its newest ``COUNT_CAP``
        matching tasks at most (then those are the counts, and partial is true)."""
        counts = {s.value: 0 for s in Status}
        with self._read_tx() as cur:
            if f.counted:
                return self._kept_counts(cur, f, counts), False
            q = self._where(cur, f, with_status=False)
            where = " WHERE " + " AND ".join(q.where) if q.where else ""
            # Newest first off the index that leads, so that the cap stops the read: a
            # GROUP BY over all matches looked a million rows up (190-1100 ms).
            cur.execute(f"SELECT tasks.status FROM {q.source}{where}"
                        f" ORDER BY {q.order} DESC LIMIT {COUNT_CAP + 1}", q.params)
            found = cur.fetchall()
        for (status,) in found[:COUNT_CAP]:
            if status in counts:
                counts[status] += 1
        return counts, len(found) > COUNT_CAP

    def _kept_counts(self, cur: Cursor, f: TaskFilter, counts: dict[str, int],
                     ) -> dict[str, int]:
        where, params = ["n <> 0"], []
        for column in ("queue", "tenant"):
            if getattr(f, column) is not None:
                where.append(f"{column} = ?")
                params.append(getattr(f, column))
        cur.execute(f"SELECT status, SUM(n) FROM {self.COUNTS} WHERE"
                    f" {' AND '.join(where)} GROUP BY status", params)
        for status, n in cur.fetchall():
            if status in counts:
                counts[status] = int(n)
        return counts

    def count_table(self) -> list[tuple[str, str, str, int]]:
        """(tenant, queue, status, tasks) for every combination seen (metrics)."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT tenant, queue, status, SUM(n) FROM {self.COUNTS}"
                        " GROUP BY tenant, queue, status ORDER BY tenant, queue, status")
            return [(t, q, s, int(n)) for t, q, s, n in cur.fetchall()]

    def stream_state(self, task_id: int, epoch: int, stream: str) -> tuple[int, bool]:
        """(bytes written, attempt ended) of one stream: one indexed read, for a live
        follower to look whether there is anything new before reading it."""
        with self._read_tx() as cur:
            cur.execute("SELECT a.finished_at, s.total FROM attempts a LEFT JOIN streams s"
                        " ON s.task_id = a.task_id AND s.epoch = a.epoch AND s.stream = ?"
                        " WHERE a.task_id = ? AND a.epoch = ?", (stream, task_id, epoch))
            row = cur.fetchone()
        if row is None:
            return 0, True
        return int(row[1] or 0), row[0] is not None

    def changed_since(self, after: int, limit: int = 5000
                      ) -> tuple[int, list[tuple[Any, ...]]]:
        """Tasks with events after id ``after`` (at most ``limit`` events): the last event
        id read, and (id, queue, status, reason, exit_code, signal, error, argv, function,
        kwargs, reported, status_file: its latest attempt's) of each such task still
        stored (status files follow them)."""
        with self._read_tx() as cur:
            cur.execute("SELECT id, task_id FROM events WHERE id > ? ORDER BY id LIMIT ?",
                        (after, limit))
            found = cur.fetchall()
            if not found:
                return after, []
            ids = sorted({int(r[1]) for r in found})
            cur.execute("SELECT id, queue, status, reason, exit_code, signal, error, argv,"
                        " function, kwargs, reported, (SELECT status_file FROM attempts"
                        " WHERE task_id = tasks.id ORDER BY epoch DESC LIMIT 1) FROM tasks"
                        f" WHERE id IN ({','.join('?' * len(ids))})",
                        ids)
            return int(found[-1][0]), [tuple(r) for r in cur.fetchall()]

    def waiting_tasks(self) -> list[tuple[Any, ...]]:
        """(id, queue, argv, function, kwargs) of every scheduled or queued task."""
        with self._read_tx() as cur:
            cur.execute("SELECT id, queue, argv, function, kwargs FROM tasks"
                        " WHERE status IN ('scheduled', 'queued') ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]

    def existing(self, ids: list[int]) -> set[int]:
        """Which of ``ids`` are tasks still stored."""
        found: set[int] = set()
        with self._read_tx() as cur:
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                cur.execute(f"SELECT id FROM tasks WHERE id IN ({','.join('?' * len(part))})",
                            part)
                found.update(int(r[0]) for r in cur.fetchall())
        return found

    #: whether a reader sees events in id order (a single writer: SQLite), or may see a
    #: higher id before a lower one whose transaction commits later (PostgreSQL)
    events_in_commit_order = False

    def transitions_since(self, after: int, limit: int = 5000) -> list[tuple[Any, ...]]:
        """Events with an id above ``after``, oldest first, at most ``limit``, for the
        server log: (id, task, at, from, to, by, attempt, reason, name, queue); name and
        queue are None for a task removed since."""
        with self._read_tx() as cur:
            cur.execute("SELECT e.id, e.task_id, e.at, e.from_status, e.to_status, e.by,"
                        " e.attempt, e.detail, t.name, t.queue FROM events e"
                        " LEFT JOIN tasks t ON t.id = e.task_id WHERE e.id > ?"
                        " ORDER BY e.id LIMIT ?", (after, limit))
            return [tuple(r) for r in cur.fetchall()]

    def last_event(self) -> int:
        with self._read_tx() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM events")
            return int(cur.fetchone()[0])

    def metric_events(self, after: int, limit: int = 100_000
                      ) -> list[tuple[int, str, str, str | None, str, float | None]]:
        """Events after id ``after`` (of tasks still stored), oldest first, for metrics:
        (id, tenant, queue, from, to, seconds). ``seconds`` is, for a claim, how long the
        task waited queued; for the end of a run, how long it ran; else None."""
        with self._read_tx() as cur:
            cur.execute(
                f"SELECT e.id, t.tenant, t.queue, e.from_status, e.to_status, {EVENT_SECONDS}"
                " FROM events e JOIN tasks t ON t.id = e.task_id WHERE e.id > ?"
                f" AND {NOT_A_NOTE}"
                " ORDER BY e.id LIMIT ?", (after, limit))
            return [(int(i), t, q, f, to, float(d) if d is not None else None)
                    for i, t, q, f, to, d in cur.fetchall()]

    def queues(self) -> list[dict[str, Any]]:
        """Every queue with tasks or settings, its settings and its tasks per status
        (``queue ls``; from the kept counts, no scan of the tasks)."""
        return self.queue_table()

    def queue_table(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every queue that has (had) tasks or settings, with its task count per status
        (of ``tenant``'s tasks only, when given), from the kept counts."""
        where, params = "n <> 0", []
        if tenant is not None:
            where += " AND tenant = ?"
            params.append(tenant)
        with self._read_tx() as cur:
            cur.execute(f"SELECT queue, status, SUM(n) FROM {self.COUNTS} WHERE {where}"
                        " GROUP BY queue, status", params)
            counts = cur.fetchall()
            cur.execute("SELECT name, paused, parallel, limits, on_finish, on_finish_url,"
                        " retain, retain_count, rate, output_head, output_tail, status_dir FROM queues")
            settings = {row[0]: (bool(row[1]), *row[2:]) for row in cur.fetchall()}
        found: dict[str, dict[str, Any]] = {}
        names = {row[0] for row in counts} | (set(settings) if tenant is None else set())
        for name in sorted(names):
            (paused, parallel, stored, hook, url, retain, retain_count, rate, output_head,
             output_tail, status_dir) = settings.get(name, (False, *[None] * 10))
            found[name] = {"name": name, "paused": paused, "parallel": parallel,
                           "limits": limits.loads(stored).to_json(),
                           "on_finish": json.loads(hook) if hook is not None else None,
                           "on_finish_url": url, "retain": retain, "retain_count": retain_count,
                           "rate": rate_text(rate), "output_head": output_head,
                           "output_tail": output_tail, "status_dir": status_dir,
                           "tasks": {s.value: 0 for s in Status}}
        for queue, status, n in counts:
            if queue in found and status in found[queue]["tasks"]:
                found[queue]["tasks"][status] = int(n)
        return list(found.values())

    def server_table(self, since: float) -> list[tuple[Any, ...]]:
        """Servers alive or stopped after ``since``: (id, host, pid, slots, started_at,
        heartbeat_at, stopped_at, stop_request, running tasks), newest first."""
        with self._read_tx() as cur:
            cur.execute("SELECT i.id, i.host, i.pid, i.slots, i.started_at, i.heartbeat_at,"
                        " i.stopped_at, i.stop_request, (SELECT COUNT(*) FROM tasks t"
                        f" WHERE t.owner = i.id AND t.status IN {ACTIVE_IN})"
                        " FROM instances i WHERE i.stopped_at IS NULL OR i.stopped_at > ?"
                        " ORDER BY i.started_at DESC", (since,))
            return [tuple(r) for r in cur.fetchall()]

    def signal_log(self, task_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """The custom signals sent to a task, newest first, read or not."""
        with self._read_tx() as cur:
            cur.execute("SELECT id, name, data, by, sent_at, acked_at FROM signals"
                        " WHERE task_id=? ORDER BY id DESC LIMIT ?", (task_id, limit))
            return [{"id": r[0], "name": r[1], "data": r[2], "by": r[3], "sent_at": r[4],
                     "acked_at": r[5]} for r in cur.fetchall()]

    def last_fired(self, schedule: str) -> Task | None:
        """The task of the schedule's latest tick (or run), if any is left."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE schedule=?"
                        " ORDER BY fire_at DESC, id DESC LIMIT 1", (schedule,))
            row = cur.fetchone()
        return rows.task(row) if row is not None else None

    def waiting(self, task_id: int) -> Waiting:
        """The stored facts that decide when the task can start (see ``Waiting``)."""
        with self._read_tx() as cur:
            task = self._fetch_task(cur, task_id)
            cur.execute("SELECT t.id, t.status FROM deps d JOIN tasks t ON t.id = d.after_id"
                        " WHERE d.task_id = ? AND t.status <> 'succeeded' ORDER BY t.id",
                        (task_id,))
            after = [(int(i), str(s)) for i, s in cur.fetchall()]
            cur.execute("SELECT paused, parallel, rate FROM queues WHERE name=?", (task.queue,))
            queue = cur.fetchone() or (0, None, None)
            # The active tasks (running or paused: at most the servers' slots) are read
            # once, by status, and sorted out here. Asked per queue, tenant and mutex,
            # SQLite (no statistics) went through the queue's or tenant's index, i.e.
            # every task the queue ever had: 180-320 ms on a store of a million.
            cur.execute(f"SELECT id, queue, tenant, mutex FROM tasks WHERE status IN {ACTIVE_IN}"
                        " ORDER BY id")
            active = [(int(i), q, t, m) for i, q, t, m in cur.fetchall()]
            queue_active = [i for i, q, _, _ in active if q == task.queue]
            # Counted up to AHEAD_CAP: past it, "over 1,000" says it all, and a queue of a
            # million would cost the count of a million on every look at such a task.
            cur.execute("SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE status='queued'"
                        " AND queue=? AND (priority > ? OR (priority = ? AND"
                        " COALESCE(seq, id) < ?)) LIMIT ?) ahead",
                        (task.queue, task.priority, task.priority, self._place(cur, task),
                         AHEAD_CAP + 1))
            ahead = int(cur.fetchone()[0])
            cur.execute("SELECT enabled, parallel FROM tenants WHERE name=?", (task.tenant,))
            tenant = cur.fetchone() or (1, None)
            tenant_active = sum(1 for _, _, t, _ in active if t == task.tenant)
            holder = None
            if task.mutex is not None:
                holder = next((i for i, _, _, m in active if m == task.mutex and i != task_id),
                              None)
            cur.execute("SELECT id, host, heartbeat_at, slots FROM instances"
                        " WHERE stopped_at IS NULL ORDER BY started_at")
            servers = [(str(i), str(h), float(b), int(s)) for i, h, b, s in cur.fetchall()]
            windows = task_windows(cur, task, queue[2], time.time())
        return Waiting(task, after, bool(queue[0]), queue[1], queue_active, ahead,
                       bool(tenant[0]), tenant[1], tenant_active, holder, servers, len(active),
                       windows)

    def _place(self, cur: Cursor, task: Task) -> int:
        cur.execute("SELECT COALESCE(seq, id) FROM tasks WHERE id=?", (task.id,))
        return int(cur.fetchone()[0])


