"""Store logic shared by the SQL backends: the server half.

Every write after a claim names ``(task id, epoch, owner)`` in its WHERE
clause. A write that matches no row was fenced off: someone else owns the task
now, or the attempt already ended. It raises :class:`StaleAttempt` (or returns
the stale ids for batches) and changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from .. import lifecycle, outputbounds, retry
from ..errors import Fenced, StaleAttempt
from ..lifecycle import Reason, Status, Verb
from ..limits import effective
from ..messages import MessageWrite
from ..model import Request
from ..statuspath import status_path
from . import rates, rows
from .access import AccessStore
from .admin import AdminStore
from .admit import Candidate, Usage
from .base import Batch, BatchResult, Claim, Instance, LostAttempt, Outcome, OutputWrite, Spawned
from .browse import BrowseStore
from .bulksubmit import BulkSubmitStore
from .hooks import HookStore
from .intask import InTaskStore
from .messages import MessageStore
from .retention import RetentionStore
from .sql import ACTIVE_IN, Cursor, in_list
from .stats import StatsStore
from .tracked import OWNER as TRACKED_OWNER
from .tracked import TrackedStore

_VERB_FOR = {Status.SUCCEEDED: Verb.SUCCEED, Status.FAILED: Verb.FAIL, Status.STOPPED: Verb.STOP,
             Status.QUEUED: Verb.YIELD}
_ENDED_BADLY = in_list(frozenset({Status.FAILED, Status.STOPPED}))
_CLAIM_FROM = in_list(lifecycle.sources(Verb.CLAIM))
_SCHEDULED = in_list(lifecycle.sources(Verb.PROMOTE))
_NOT_PAUSED = "queue NOT IN (SELECT name FROM queues WHERE paused <> 0)"
#: Claim order, served by the tasks_status index: priority, then place in the queue (a
#: multi-step task that gave its slot back is behind the tasks queued meanwhile).
CLAIM_ORDER = "priority DESC, COALESCE(seq, id), id"
_TENANT_ENABLED = "tenant NOT IN (SELECT name FROM tenants WHERE enabled = 0)"
#: the settings that limit or shape claims: queues' ('q') and enabled tenants' ('t')
LIMITS_SQL = ("SELECT 'q', name, parallel, limits, rate, output_head, output_tail,"
              " status_dir FROM queues WHERE parallel IS NOT NULL OR limits IS NOT NULL"
              " OR rate IS NOT NULL OR output_head IS NOT NULL OR output_tail IS NOT NULL"
              " OR status_dir IS NOT NULL"
              " UNION ALL SELECT 't', name, parallel, run_as, NULL, NULL, NULL, NULL"
              " FROM tenants"
              " WHERE enabled <> 0 AND (parallel IS NOT NULL OR run_as IS NOT NULL)")
_INSTANCE_COLUMNS = ("id, host, boot_id, pid, slots, started_at, heartbeat_at, stopped_at,"
                     " stop_request")


class SqlServerStore(StatsStore, AccessStore, BrowseStore, MessageStore, InTaskStore, AdminStore,
                     HookStore, RetentionStore, BulkSubmitStore, TrackedStore):
    """Client operations (tasks; access and browsing from their mixins) plus the fenced
    operations a server performs."""

    #: when the last claim's rate windows free a start (None: none was full)
    rate_wake_at: float | None = None

    def wake(self, kind: bytes = b"w") -> None:
        """Hint servers that there is work (``w``), a control request (``r``)..."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def register(self, instance: Instance) -> None:
        with self._tx() as cur:
            cur.execute(f"INSERT INTO instances ({_INSTANCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                        (instance.id, instance.host, instance.boot_id, instance.pid,
                         instance.slots, instance.started_at, instance.heartbeat_at, None, None))

    def heartbeat(self, instance_id: str, now: float) -> Instance:
        with self._tx() as cur:
            cur.execute(f"UPDATE instances SET heartbeat_at=? WHERE id=? AND stopped_at IS NULL"
                        f" RETURNING {_INSTANCE_COLUMNS}", (now, instance_id))
            row = cur.fetchone()
        if row is None:
            raise Fenced(f"server instance {instance_id} was declared dead by another server"
                         " (it missed its lease); its tasks were taken over")
        return Instance(*row)

    def fence(self, instance_id: str, now: float) -> None:
        """Declare a server dead: its heartbeats fail from now on (it stops if it was
        only frozen) and its unfinished attempts are lost."""
        with self._tx() as cur:
            cur.execute("UPDATE instances SET stopped_at=?, stop_request='fenced'"
                        " WHERE id=? AND stopped_at IS NULL", (now, instance_id))
            cur.execute("DELETE FROM leases WHERE holder=?", (instance_id,))

    def unregister(self, instance_id: str, now: float) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE instances SET stopped_at=? WHERE id=?", (now, instance_id))
            cur.execute("DELETE FROM leases WHERE holder=?", (instance_id,))

    def gone(self) -> str | None:
        """Why the store this connection writes is no longer the one at its location
        (a file removed or replaced), or None. A server cannot see that by writing."""
        return None

    def apply(self, owner: str, batch: Batch) -> BatchResult:
        """One server tick's writes in one transaction: pids of spawned attempts, output,
        outcomes, then a claim of up to ``batch.claim`` queued tasks.

        Output and outcomes of attempts that are not ours any more are not written;
        their task ids come back in ``stale``.
        """
        now = time.time()
        # An attempt that ended within a tick of its spawn gets its pid with its outcome.
        pids = {(s.task_id, s.epoch): s for s in batch.spawned}
        ending = {(o.task_id, o.epoch) for o in batch.outcomes}
        spawned = [s for s in batch.spawned if (s.task_id, s.epoch) not in ending]
        with self._tx() as cur:
            if spawned:
                self._record_spawned(cur, owner, spawned)
            stale = {task_id for task_id, _ in self._append(cur, owner, batch.output)}
            dependents = False
            for o in batch.outcomes:
                pid = pids.get((o.task_id, o.epoch))
                ended = self._finish_one(cur, owner, o, now, f"server:{owner}", pid)
                if ended is None:
                    stale.add(o.task_id)
                dependents = dependents or bool(ended)
            claims = self._claim(cur, owner, batch.claim, now) if batch.claim > 0 else []
        wake = self.rate_wake_at if batch.claim > 0 else None
        return BatchResult(sorted(stale), claims, dependents, wake)

    def promote_due(self, now: float, by: str) -> int:
        """Fail scheduled tasks whose dependencies failed (down whole chains), then queue
        those that are due and whose dependencies all succeeded; returns how many."""
        with self._read_tx() as cur:  # the common case, nothing scheduled: no write at all
            cur.execute(f"SELECT 1 FROM tasks WHERE status IN {_SCHEDULED} LIMIT 1")
            if cur.fetchone() is None:
                return 0
        with self._tx() as cur:
            while True:  # one pass per link of a chain of --after
                cur.execute(
                    "UPDATE tasks SET status=?, reason=?, error=?, finished_at=?, changed_by=?,"
                    f" changed_at=? WHERE status IN {in_list(lifecycle.sources(Verb.ABANDON))}"
                    " AND EXISTS (SELECT 1 FROM deps d JOIN tasks p ON p.id = d.after_id"
                    f" WHERE d.task_id = tasks.id AND p.status IN {_ENDED_BADLY})",
                    (lifecycle.target(Verb.ABANDON).value, Reason.DEPENDENCY.value,
                     "a task it runs after failed or was stopped", now, by, now))
                if cur.rowcount == 0:
                    break
            cur.execute(
                "UPDATE tasks SET status=?, changed_by=?, changed_at=?"
                f" WHERE status IN {in_list(lifecycle.sources(Verb.PROMOTE))}"
                " AND (run_at IS NULL OR run_at <= ?)"
                " AND NOT EXISTS (SELECT 1 FROM deps d JOIN tasks p ON p.id = d.after_id"
                " WHERE d.task_id = tasks.id AND p.status <> ?)",
                (lifecycle.target(Verb.PROMOTE).value, by, now, now, Status.SUCCEEDED.value))
            return int(cur.rowcount)

    def fire_schedules(self, now: float, by: str) -> tuple[int, float | None]:
        """Submit the tasks of due cron ticks; returns (how many, the next tick of any
        schedule). Exactly once per (schedule, tick): a schedule's ticks are accounted
        for by moving its ``last_tick`` with a compare-and-set, in the transaction that
        submits them (a second server doing the same finds it moved and fires
        nothing), and the unique index on (schedule, fire_at) backs it up."""
        from ..cron import CatchUp, due, next_fire

        with self._read_tx() as cur:
            cur.execute("SELECT name FROM schedules WHERE paused=0 AND next_at <= ?"
                        f" AND {_TENANT_ENABLED}", (now,))
            names = [r[0] for r in cur.fetchall()]
        fired = 0
        for name in names:
            with self._tx() as cur:
                cur.execute(f"SELECT {rows.SCHEDULE_COLUMNS} FROM schedules WHERE name=?"
                            " AND paused=0 AND next_at <= ?", (name, now))
                row = cur.fetchone()
                if row is None:
                    continue
                sched = rows.schedule(row)
                ticks, last = due(sched.expr, sched.tz, last=sched.last_tick, now=now,
                                  catch_up=CatchUp(sched.catch_up), max_lag=sched.max_lag)
                cur.execute("UPDATE schedules SET last_tick=?, next_at=?, fired=fired+?"
                            " WHERE name=? AND last_tick=?",
                            (last, next_fire(sched.expr, sched.tz, max(last, now)), len(ticks),
                             name, sched.last_tick))
                if cur.rowcount == 0:
                    continue  # another server fired these ticks
                for tick in ticks:
                    self._submit(cur, sched.spec, by=by, schedule=name, fire_at=tick)
                fired += len(ticks)
        return fired, self.next_tick()

    def next_tick(self) -> float | None:
        """The earliest next tick of a running schedule, if any."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT MIN(next_at) FROM schedules WHERE paused=0 AND {_TENANT_ENABLED}")
            row = cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def next_due(self) -> float | None:
        """The earliest start time of a scheduled task, if any."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT MIN(run_at) FROM tasks WHERE status IN {_SCHEDULED}")
            row = cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def claim(self, owner: str, limit: int) -> list[Claim]:
        """Move up to ``limit`` queued tasks to running, each with a new epoch and attempt."""
        return self.apply(owner, Batch(claim=limit)).claims

    def record_spawned(self, owner: str, spawned: Sequence[Spawned]) -> None:
        self.apply(owner, Batch(spawned=list(spawned)))

    def finish(self, owner: str, outcomes: Sequence[Outcome],
               output: Sequence[OutputWrite | MessageWrite] = ()) -> list[int]:
        """Record how attempts ended (with their last output); returns fenced-off task ids."""
        return self.apply(owner, Batch(output=list(output), outcomes=list(outcomes))).stale

    def append_output(self, owner: str, writes: Sequence[OutputWrite]) -> None:
        """Store output of live attempts; raises StaleAttempt (writing nothing) if
        one of them is not ours any more."""
        with self._tx() as cur:
            stale = self._append(cur, owner, writes)
            if stale:
                task_id, epoch = stale[0]
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not ours any more")

    def _claim(self, cur: Cursor, owner: str, limit: int, now: float) -> list[Claim]:
        """Claim up to ``limit`` queued tasks that may start (see :mod:`.admit`), in
        claim order: priority, then submit order."""
        if self.CLAIM_SERIALIZE:
            cur.execute(self.CLAIM_SERIALIZE)
        self.rate_wake_at = None
        usage, run_as, queue_limits, queue_bounds = self._usage(cur, now)
        ids: list[int] = []
        seen: dict[int, Candidate] = {}
        for _ in range(4):  # each round excludes what the previous one found blocked
            want = limit - len(ids)
            # with limits some candidates may be refused: look further than needed
            limited = (usage.queue_limits or usage.tenant_limits or not usage.unknown
                       or usage.windows)
            window = want * 4 + 16 if limited else want
            found = self._candidates(cur, usage, ids, window)
            if usage.unknown and any(c.mutex is not None for c in found):
                self._count_active(cur, usage)  # mutexes matter after all: count, look again
                found = self._candidates(cur, usage, ids, window)
            if any(c.rate_key is not None for c in found):
                rates.load_task_windows(cur, usage, found, now)
            seen.update((c.id, c) for c in found)
            ids += usage.admit(found, want)
            if len(ids) >= limit or len(found) < window:
                break
        if usage.windows:
            rates.record_starts(cur, usage, [seen[i] for i in ids], now)
            self.rate_wake_at = usage.wake_at()
        if not ids:
            return []
        cur.execute(
            "UPDATE tasks SET status=?, epoch=epoch+1, owner=?, pid=NULL, started_at=?,"
            " finished_at=NULL, reason=NULL, exit_code=NULL, signal=NULL, error=NULL,"
            " progress_done=NULL, progress_total=NULL, progress_message=NULL, result=NULL,"
            " stop_asked=0, reported=NULL,"
            f" changed_by=?, changed_at=? WHERE id IN ({','.join('?' * len(ids))})"
            f" AND status IN {_CLAIM_FROM}"
            " RETURNING id, epoch, argv, env, cwd, stdin, stdin_open, timeout, priority, tenant,"
            " function, kwargs, fds, queue, limits, output_head, output_tail",
            (lifecycle.target(Verb.CLAIM).value, owner, now, f"server:{owner}", now, *ids),
        )
        order = {task_id: n for n, task_id in enumerate(ids)}
        got = sorted(cur.fetchall(), key=lambda r: order[r[0]])  # the order to start them
        claims = [Claim(r[0], r[1], tuple(json.loads(r[2])), json.loads(r[3]), r[4],
                        r[5], bool(r[6]), f"{owner}.{r[0]}.{r[1]}", r[7], run_as.get(r[9]),
                        r[10], r[11], r[12], r[13], effective(r[14], queue_limits.get(r[13])),
                        *self._bounds((r[15], r[16]), queue_bounds.get(r[13])),
                        self._status_file(r[0], r[13]))
                  for r in got]
        cur.executemany(
            "INSERT INTO attempts (task_id, epoch, owner, run_tag, started_at, output_head,"
            " output_tail, status_file) VALUES (?,?,?,?,?,?,?,?)",
            [(c.task_id, c.epoch, owner, c.run_tag, now, c.output_head, c.output_tail,
              c.status_file) for c in claims],
        )
        return claims

    #: the claiming server's ``status_dir`` ("": none), set by the server: a claim fixes
    #: its attempt's status file with it and the queues' own dirs, read in the same
    #: transaction (so a queue's dir changed a moment ago counts at once). None: this
    #: store's claims write no status files (an inline yard, tests)
    claim_status_root: str | None = None
    claim_status_dirs: dict[str, str] = {}  #: the queues' own dirs, as the last claim read

    def _status_file(self, task_id: int, queue: str) -> str | None:
        if self.claim_status_root is None:
            return None
        return status_path(task_id, queue, self.claim_status_dirs.get(queue),
                           self.claim_status_root)

    #: the claiming server's output bounds (head, tail, largest tail), set by the server:
    #: claims resolve a task's bounds with them, and its attempt records the result
    claim_bounds: tuple[int, int, int] | None = None

    def _bounds(self, own: tuple[int | None, int | None],
                queue: tuple[int | None, int | None] | None) -> tuple[int | None, int | None]:
        if self.claim_bounds is None:  # not a server (tests): the task's, else its queue's
            queue = queue or (None, None)
            return (own[0] if own[0] is not None else queue[0],
                    own[1] if own[1] is not None else queue[1])
        head, tail, top = self.claim_bounds
        return outputbounds.resolve(own, queue, outputbounds.Bounds(head, tail), top)

    def _usage(self, cur: Cursor, now: float) -> tuple[Usage, dict[str, str], dict[str, str],
                                                       dict[str, tuple[int | None, int | None]]]:
        """The limits that apply (and, when there are any, what runs now, and the queues'
        rate windows); the run_as login per tenant; the resource limits per queue. One
        round trip when nothing is limited."""
        cur.execute(LIMITS_SQL)
        found = cur.fetchall()
        usage = Usage(None, {r[1]: int(r[2]) for r in found if r[0] == "q" and r[2] is not None},
                      {r[1]: int(r[2]) for r in found if r[0] == "t" and r[2] is not None})
        if usage.queue_limits or usage.tenant_limits:
            self._count_active(cur, usage)
        queue_rates = {r[1]: r[4] for r in found if r[0] == "q" and r[4] is not None}
        if queue_rates:
            rates.load_queue_windows(cur, usage, queue_rates, now)
        self.claim_status_dirs = {r[1]: r[7] for r in found if r[0] == "q" and r[7]}
        return (usage, {r[1]: r[3] for r in found if r[0] == "t" and r[3] is not None},
                {r[1]: r[3] for r in found if r[0] == "q" and r[3] is not None},
                {r[1]: (r[5], r[6]) for r in found if r[0] == "q"})

    def _count_active(self, cur: Cursor, usage: Usage) -> None:
        # tracked tasks take no slot: taskyard did not start them and cannot hold them back
        cur.execute(f"SELECT queue, tenant, mutex FROM tasks WHERE status IN {ACTIVE_IN}"
                    " AND tracked = 0")
        usage.count(cur.fetchall())

    def _candidates(self, cur: Cursor, usage: Usage, taken: list[int],
                    window: int) -> list[Candidate]:
        """Queued tasks in claim order, leaving out those that certainly cannot start."""
        cur.execute(*self.candidates_sql(usage, taken, window))
        return [Candidate(*r) for r in cur.fetchall()]

    def candidates_sql(self, usage: Usage, taken: list[int],
                       window: int) -> tuple[str, list[object]]:
        """The claim's SELECT of candidates and its parameters. Read off the
        ``tasks_status`` index in claim order, from the first queued task on: its cost
        does not grow with the queue's length (the contract test
        ``test_query_plans`` explains it on every store)."""
        where = [f"status IN {_CLAIM_FROM}", _NOT_PAUSED, _TENANT_ENABLED]
        params: list[object] = []
        for column, values in (("queue", usage.full_queues()), ("tenant", usage.full_tenants()),
                               ("id", taken)):
            if values:
                where.append(f"{column} NOT IN ({','.join('?' * len(values))})")
                params += values
        held = usage.held_mutexes()
        if held:  # a strict queue's head must be seen even when it waits for its mutex
            strict = usage.strict()
            where.append(f"(mutex IS NULL OR mutex NOT IN ({','.join('?' * len(held))})"
                         + (f" OR queue IN ({','.join('?' * len(strict))}))" if strict else ")"))
            params += held + strict
        full = usage.full_rates()
        if full:  # keys whose rate lets nothing start now (a strict queue's head as above)
            strict = usage.strict()
            where.append(f"(rate_key IS NULL OR rate_key || ' ' || rate NOT IN"
                         f" ({','.join('?' * len(full))})"
                         + (f" OR queue IN ({','.join('?' * len(strict))}))" if strict else ")"))
            params += full + strict
        return ("SELECT id, queue, tenant, mutex, rate_key, rate FROM tasks"
                f" WHERE {' AND '.join(where)}"
                f" ORDER BY {CLAIM_ORDER} LIMIT ?{self.CLAIM_LOCK}", [*params, window])

    def _record_spawned(self, cur: Cursor, owner: str, spawned: Sequence[Spawned]) -> None:
        # One lock order everywhere: a task's row before its attempt's.
        cur.executemany(f"UPDATE tasks SET pid=? WHERE id=? AND epoch=? AND owner=?"
                        f" AND status IN {ACTIVE_IN} AND pid {self.IS_NOT} ?",
                        [(s.pid, s.task_id, s.epoch, owner, s.pid) for s in spawned])
        cur.executemany("UPDATE attempts SET pid=?, pid_start=? WHERE task_id=? AND epoch=?"
                        " AND owner=? AND finished_at IS NULL",
                        [(s.pid, s.pid_start, s.task_id, s.epoch, owner) for s in spawned])

    def _finish_one(self, cur: Cursor, owner: str, o: Outcome, now: float, by: str,
                    spawned: Spawned | None = None) -> bool | None:
        """Record one outcome; None if fenced off, else whether tasks wait for this one
        (``--after``: they may start now, or fail)."""
        lifecycle.check_reason(_VERB_FOR[o.status], o.reason)
        if o.status is Status.QUEUED:
            return False if self._yield_one(cur, owner, o, now, by, spawned) else None
        row = self._end(cur, owner, o, now, by, spawned)
        if row is None and o.status is Status.SUCCEEDED:
            # It reported an error itself, then exited 0 (rare: looked up only then)
            cur.execute(f"SELECT reported FROM tasks WHERE id=? AND epoch=? AND owner=?"
                        f" AND status IN {ACTIVE_IN}", (o.task_id, o.epoch, owner))
            found = cur.fetchone()
            if found is not None and found[0] is not None:
                o = o._replace(status=Status.FAILED, reason=Reason.REPORTED, error=found[0])
                row = self._end(cur, owner, o, now, by, spawned)
        if row is None:
            return None
        self._close_attempt(cur, o, now, spawned)
        if o.status is Status.FAILED and o.reason is not None:
            self._maybe_retry(cur, o.task_id, o.epoch, o.reason, now, by)
        return bool(row[0])

    def _end(self, cur: Cursor, owner: str, o: Outcome, now: float, by: str,
             spawned: Spawned | None) -> Any:
        """The guarded UPDATE of an ending; the row (whether tasks wait for it) or None. A
        success does not apply to an attempt that reported an error of its own."""
        guard = " AND reported IS NULL" if o.status is Status.SUCCEEDED else ""
        cur.execute(
            "UPDATE tasks SET status=?, reason=?, exit_code=?, signal=?, error=?, result=?,"
            " finished_at=?, changed_by=?, changed_at=?, pid=COALESCE(?, pid)"
            f" WHERE id=? AND epoch=? AND owner=? AND status IN {ACTIVE_IN}{guard}"
            " RETURNING EXISTS (SELECT 1 FROM deps WHERE deps.after_id = tasks.id)",
            (o.status.value, _v(o.reason), o.exit_code, o.signal, _text(o.error), o.result, now,
             by, now, spawned.pid if spawned else None, o.task_id, o.epoch, owner),
        )
        return cur.fetchone()

    def _yield_one(self, cur: Cursor, owner: str, o: Outcome, now: float, by: str,
                   spawned: Spawned | None) -> bool:
        """A multi-step task gave its slot back: queued again, behind what waits now."""
        cur.execute(
            "UPDATE tasks SET status=?, pid=NULL, changed_by=?, changed_at=?,"
            " seq=(SELECT MAX(id) FROM tasks) + 1"
            f" WHERE id=? AND epoch=? AND owner=? AND status IN"
            f" {in_list(lifecycle.sources(Verb.YIELD))}",
            (lifecycle.target(Verb.YIELD).value, by, now, o.task_id, o.epoch, owner))
        if cur.rowcount == 0:
            return False
        self._close_attempt(cur, o, now, spawned)
        return True

    def _maybe_retry(self, cur: Cursor, task_id: int, epoch: int, reason: Reason, now: float,
                     by: str) -> bool:
        """Send a failed task back to ``scheduled`` if its policy retries ``reason``."""
        cur.execute("SELECT retries, retried, retry_delay, backoff, retry_on FROM tasks"
                    " WHERE id=? AND epoch=?", (task_id, epoch))
        row = cur.fetchone()
        if row is None or row[1] >= row[0] or reason.value not in row[4].split(","):
            return False
        run_at = now + retry.next_delay(row[1], row[2], row[3])
        cur.execute(
            "UPDATE tasks SET status=?, run_at=?, retried=retried+1, finished_at=NULL,"
            f" changed_by=?, changed_at=? WHERE id=? AND epoch=?"
            f" AND status IN {in_list(lifecycle.sources(Verb.RETRY))}",
            (lifecycle.target(Verb.RETRY).value, run_at, by, now, task_id, epoch))
        return cur.rowcount == 1

    def _close_attempt(self, cur: Cursor, o: Outcome, now: float,
                       spawned: Spawned | None = None) -> None:
        """Record the attempt's outcome. Requests still pending for it are rejected by
        its server's next ``pending_requests`` pass (not here: off the hot path)."""
        used = o.usage or (None, None, None)
        cur.execute(
            "UPDATE attempts SET status=?, reason=?, exit_code=?, signal=?, error=?,"
            " finished_at=?, pid=COALESCE(?, pid), pid_start=COALESCE(?, pid_start),"
            " cpu_user=?, cpu_system=?, max_rss_kib=?"
            " WHERE task_id=? AND epoch=? AND finished_at IS NULL",
            (o.status.value, _v(o.reason), o.exit_code, o.signal, _text(o.error), now,
             spawned.pid if spawned else None, spawned.pid_start if spawned else None,
             *used, o.task_id, o.epoch),
        )

    def _reject_requests(self, cur: Cursor, o: Outcome, now: float) -> None:
        cur.execute("UPDATE requests SET state='rejected', result=?, done_at=?"
                    " WHERE task_id=? AND state='pending'",
                    (f"task ended ({o.status})", now, o.task_id))

    def _append(self, cur: Cursor, owner: str,
                writes: Sequence[OutputWrite | MessageWrite]) -> list[tuple[int, int]]:
        stale: list[tuple[int, int]] = []
        ordered = sorted(writes, key=lambda w: (w.task_id, w.epoch))
        for key, group in groupby(ordered, key=lambda w: (w.task_id, w.epoch)):
            # The fence holds the task's row until commit: a takeover (crash) waits for
            # this output, or this output sees the takeover and is refused.
            cur.execute(f"SELECT 1 FROM tasks WHERE id=? AND epoch=? AND owner=?"
                        f" AND status IN {ACTIVE_IN}{self.ROW_LOCK}", (key[0], key[1], owner))
            if cur.fetchone() is None:
                stale.append(key)
                continue
            for w in group:
                if isinstance(w, MessageWrite):
                    self._write_pipe_messages(cur, w)
                else:
                    self._write_chunk(cur, w)
        return stale

    def _write_chunk(self, cur: Cursor, w: OutputWrite) -> None:
        if w.data:
            cur.execute('INSERT INTO chunks (task_id, epoch, stream, "offset", data)'
                        " VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                        (w.task_id, w.epoch, w.stream, w.offset, w.data))
        cur.execute(
            "INSERT INTO streams (task_id, epoch, stream, total, head) VALUES (?,?,?,?,?)"
            " ON CONFLICT (task_id, epoch, stream) DO UPDATE SET total=excluded.total",
            (w.task_id, w.epoch, w.stream, w.total, w.head),
        )
        if w.drop_before > w.head:
            cur.execute(f'DELETE FROM chunks WHERE task_id=? AND epoch=? AND stream=?'
                        f' AND "offset" >= ? AND "offset" + {self.LENGTH}(data) <= ?',
                        (w.task_id, w.epoch, w.stream, w.head, w.drop_before))

    def finished_attempts(self, keys: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these (task id, epoch) attempts have their outcome recorded."""
        found: set[tuple[int, int]] = set()
        with self._read_tx() as cur:
            for task_id, epoch in keys:
                cur.execute("SELECT 1 FROM attempts WHERE task_id=? AND epoch=?"
                            " AND finished_at IS NOT NULL", (task_id, epoch))
                if cur.fetchone() is not None:
                    found.add((task_id, epoch))
        return found

    def open_claims(self, owner: str) -> list[Claim]:
        """The running attempts ``owner`` holds, as claims: after an ambiguous commit of a
        claim, the server reads back by (task id, epoch) what it did claim."""
        with self._read_tx() as cur:
            cur.execute(
                "SELECT t.id, t.epoch, t.argv, t.env, t.cwd, t.stdin, t.stdin_open, a.run_tag,"
                " t.timeout, n.run_as, t.function, t.kwargs, t.fds, t.queue, t.limits, q.limits,"
                " a.output_head, a.output_tail"
                " FROM attempts a JOIN tasks t ON t.id = a.task_id AND t.epoch = a.epoch"
                " LEFT JOIN queues q ON q.name = t.queue"
                " LEFT JOIN tenants n ON n.name = t.tenant AND n.enabled <> 0"
                f" WHERE a.owner=? AND a.finished_at IS NULL AND t.status IN {ACTIVE_IN}"
                " ORDER BY t.id", (owner,))
            return [Claim(r[0], r[1], tuple(json.loads(r[2])), json.loads(r[3]), r[4], r[5],
                          bool(r[6]), r[7], r[8], r[9], r[10], r[11], r[12], r[13],
                          effective(r[14], r[15]), r[16], r[17])
                    for r in cur.fetchall()]

    def hold_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Take or renew the lease ``name`` (held by nobody, expired, or ours already);
        True while ``holder`` holds it."""
        with self._tx() as cur:
            cur.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?)"
                        " ON CONFLICT (name) DO UPDATE SET holder=excluded.holder,"
                        " expires_at=excluded.expires_at"
                        " WHERE leases.holder=excluded.holder OR leases.expires_at < ?",
                        (name, holder, now + ttl, now))
            return cur.rowcount == 1

    def pending_requests(self, owner: str) -> list[Request]:
        with self._read_tx() as cur:
            cur.execute(
                f"SELECT {', '.join('r.' + c for c in rows.REQUEST_COLUMNS.split(', '))}"
                " FROM requests r JOIN tasks t ON t.id = r.task_id"
                " WHERE r.state='pending' AND t.owner=? ORDER BY r.id", (owner,))
            return [rows.request(r) for r in cur.fetchall()]

    def complete_request(self, request_id: int, state: str, result: str | None) -> None:
        with self._tx() as cur:
            # stdin data is the task's by now (or refused): not kept in the store for good
            cur.execute("UPDATE requests SET state=?, result=?, done_at=?, payload=CASE kind"
                        " WHEN 'stdin' THEN NULL ELSE payload END WHERE id=?",
                        (state, result, time.time(), request_id))

    def set_paused(self, owner: str, task_id: int, epoch: int, paused: bool, by: str) -> None:
        verb = Verb.PAUSE if paused else Verb.RESUME
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                f"UPDATE tasks SET status=?, changed_by=?, changed_at=? WHERE id=? AND epoch=?"
                f" AND owner=? AND status IN {in_list(lifecycle.sources(verb))}",
                (lifecycle.target(verb).value, by, now, task_id, epoch, owner),
            )
            if cur.rowcount == 0:
                raise StaleAttempt(f"task {task_id} attempt {epoch}: cannot {verb}")

    def lost_attempts(self, me: str, dead_before: float) -> list[LostAttempt]:
        """Unfinished attempts of other servers that are gone (or silent since ``dead_before``).

        Does not need the owner's row to exist: an attempt whose owner row was
        pruned is lost as well.
        """
        with self._read_tx() as cur:
            cur.execute(
                "SELECT a.task_id, a.epoch, a.owner, i.host, i.boot_id, a.pid, a.pid_start,"
                " a.run_tag FROM attempts a LEFT JOIN instances i ON i.id = a.owner"
                " WHERE a.finished_at IS NULL AND a.owner <> ? AND a.owner <> ?"
                " AND (i.id IS NULL OR i.stopped_at IS NOT NULL OR i.heartbeat_at < ?)",
                (me, TRACKED_OWNER, dead_before),  # tracked: they die with their owner
            )
            return [LostAttempt(*r) for r in cur.fetchall()]

    def crash(self, attempt: LostAttempt, by: str) -> None:
        now = time.time()
        outcome = Outcome(attempt.task_id, attempt.epoch, Status.FAILED, Reason.CRASHED,
                          error=f"server {attempt.owner} died while the task ran")
        with self._tx() as cur:
            cur.execute(
                "UPDATE tasks SET status=?, reason=?, error=?, finished_at=?, changed_by=?,"
                f" changed_at=? WHERE id=? AND epoch=? AND status IN {ACTIVE_IN}",
                (lifecycle.target(Verb.CRASH).value, Reason.CRASHED.value, outcome.error, now,
                 by, now, attempt.task_id, attempt.epoch),
            )
            self._close_attempt(cur, outcome, now)
            self._reject_requests(cur, outcome, now)
            self._maybe_retry(cur, attempt.task_id, attempt.epoch, Reason.CRASHED, now, by)


def _text(value: str | None) -> str | None:
    """Text a server writes that came from elsewhere (an error message naming a file whose
    name is not UTF-8, a worker's exception): what cannot be stored is escaped."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _v(reason: Reason | None) -> str | None:
    return reason.value if reason is not None else None

