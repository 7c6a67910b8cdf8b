"""A server tick on PostgreSQL in two round trips.

On PostgreSQL every statement a tick waits for is a network round trip, and the
server's and the backend's CPU for each (a send, a wake, a receive on both
sides) was most of what a task cost. A tick of the common shape (tasks ended,
free slots, no limit on what may start) now goes out in psycopg's pipeline mode
as two batches:

1. ``BEGIN``, the pids of spawned attempts, per ended attempt one statement that
   ends the task and closes its attempt (a data-modifying CTE: the attempt is
   closed only when the fenced UPDATE of the task applied), the queues' and
   tenants' limits, and the first queued tasks in claim order with everything a
   spawn needs (``FOR UPDATE SKIP LOCKED``, as the claim always locked them);
2. the claim (an ``UPDATE ... RETURNING`` of those tasks and the INSERT of their
   attempts in one CTE) and ``COMMIT``.

The same rows are written in the same order and under the same guards as
:meth:`SqlServerStore.apply` writes them; only the waiting is gone. Everything
else takes the general path inside the same transaction: output, multi-step
tasks giving their slot back, an ending the fenced UPDATE refused (a reported
error), a retry, and claims when some limit applies (a queue's or a tenant's
parallel limit or rate, a mutex or a rate key on a candidate). Claims without
a limit to count do not take the claim lock (``CLAIM_SERIALIZE``): row locks
with SKIP LOCKED keep two servers from claiming one task, and the lock only
makes counted limits exact. So servers of one store claim side by side instead
of one after another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .. import lifecycle
from ..lifecycle import Status, Verb
from ..limits import effective
from .admit import Candidate, Usage
from .base import Batch, BatchResult, Claim, Outcome, Spawned
from .sql import ACTIVE_IN, Cursor, in_list
from .sqlserver import (
    _NOT_PAUSED,
    _TENANT_ENABLED,
    CLAIM_ORDER,
    LIMITS_SQL,
    SqlServerStore,
    _text,
    _v,
)

_CLAIM_FROM = in_list(lifecycle.sources(Verb.CLAIM))

#: the end of an attempt: the fenced UPDATE of its task, and its attempt closed only
#: if that applied (the task's row is locked first, as everywhere)
_END = (
    "WITH t AS (UPDATE tasks SET status=?, reason=?, exit_code=?, signal=?, error=?,"
    " result=?, finished_at=?, changed_by=?, changed_at=?, pid=COALESCE(?, pid)"
    f" WHERE id=? AND epoch=? AND owner=? AND status IN {ACTIVE_IN}{{guard}}"
    " RETURNING EXISTS (SELECT 1 FROM deps WHERE deps.after_id = tasks.id) AS waited),"
    " a AS (UPDATE attempts SET status=?, reason=?, exit_code=?, signal=?, error=?,"
    " finished_at=?, pid=COALESCE(?, pid), pid_start=COALESCE(?, pid_start),"
    " cpu_user=?, cpu_system=?, max_rss_kib=?"
    " WHERE task_id=? AND epoch=? AND finished_at IS NULL AND EXISTS (SELECT 1 FROM t))"
    " SELECT waited FROM t")

#: the first queued tasks in claim order, with what a spawn needs (``_candidates``
#: with no limit to leave anything out)
_FIRST_QUEUED = (
    "SELECT id, queue, tenant, mutex, rate_key, rate, argv, env, cwd, stdin, stdin_open,"
    " timeout, function, kwargs, fds, limits, output_head, output_tail FROM tasks"
    f" WHERE status IN {_CLAIM_FROM} AND {_NOT_PAUSED} AND {_TENANT_ENABLED}"
    f" ORDER BY {CLAIM_ORDER} LIMIT ? FOR UPDATE SKIP LOCKED")

#: the claim of the tasks given (ids, and their attempts' output bounds, as arrays),
#: with their attempts
_CLAIM = (
    "WITH c AS (UPDATE tasks SET status=?, epoch=epoch+1, owner=?, pid=NULL, started_at=?,"
    " finished_at=NULL, reason=NULL, exit_code=NULL, signal=NULL, error=NULL,"
    " progress_done=NULL, progress_total=NULL, progress_message=NULL, result=NULL,"
    " stop_asked=0, reported=NULL, changed_by=?, changed_at=?"
    f" WHERE id = ANY(?::bigint[]) AND status IN {_CLAIM_FROM} RETURNING id, epoch),"
    " a AS (INSERT INTO attempts (task_id, epoch, owner, run_tag, started_at, output_head,"
    " output_tail, status_file) SELECT c.id, c.epoch, ?, ?::text || c.id || '.' || c.epoch,"
    " ?, v.head, v.tail, v.status_file FROM c JOIN unnest(?::bigint[], ?::bigint[],"
    " ?::bigint[], ?::text[]) AS v (id, head, tail, status_file)"
    " ON v.id = c.id RETURNING task_id, epoch)"
    " SELECT task_id, epoch FROM a")

#: the statements of a tick, prepared once on each connection that runs ticks
PREPARED = {"taskyard_end_ok": _END.format(guard=" AND reported IS NULL"),
            "taskyard_end": _END.format(guard=""),
            "taskyard_limits": LIMITS_SQL,
            "taskyard_first_queued": _FIRST_QUEUED,
            "taskyard_claim": _CLAIM}


def _array(values: Iterable[int | None]) -> str:
    """A bigint array's literal (the values are ints, never text)."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


Statement = tuple[str, Sequence[Any]]


class TickConnection(Protocol):
    """A write transaction whose statements go in batches, each one message answered
    at once; ``cursor`` runs statements one at a time in between (the general path)."""

    def cursor(self) -> Cursor: ...
    def run(self, statements: Sequence[Statement]) -> list[list[Any]]: ...
    def commit(self, statements: Sequence[Statement] = ()) -> list[list[Any]]: ...


class PgTickStore(SqlServerStore):
    """``apply`` in two round trips (see the module's doc); the dialect supplies
    ``_tick_tx``."""

    def _tick_tx(self) -> AbstractContextManager[TickConnection]:
        raise NotImplementedError

    def apply(self, owner: str, batch: Batch) -> BatchResult:
        now = time.time()
        by = f"server:{owner}"
        pids = {(s.task_id, s.epoch): s for s in batch.spawned}
        ending = {(o.task_id, o.epoch) for o in batch.outcomes}
        spawned = [s for s in batch.spawned if (s.task_id, s.epoch) not in ending]
        stale: set[int] = set()
        steps = [o for o in batch.outcomes if o.status is Status.QUEUED]
        with self._tick_tx() as conn:
            if spawned or batch.output or steps:  # the general path, one statement at a time
                cur = conn.cursor()
                if spawned:
                    self._record_spawned(cur, owner, spawned)
                stale.update(task_id for task_id, _ in self._append(cur, owner, batch.output))
                for o in steps:  # gave its slot back: queued again before the claim
                    if self._finish_one(cur, owner, o, now, by,
                                        pids.get((o.task_id, o.epoch))) is None:
                        stale.add(o.task_id)
            ends = [o for o in batch.outcomes if o.status is not Status.QUEUED]
            statements = [self._end_statement(owner, o, now, by, pids.get((o.task_id, o.epoch)))
                          for o in ends]
            if batch.claim > 0:
                statements += [("taskyard_limits", ()), ("taskyard_first_queued", (batch.claim,))]
            answers = conn.run(statements) if statements else []  # the first round trip
            dependents = False
            for o, rows in zip(ends, answers, strict=False):
                waited = self._after_end(conn, owner, o, rows, now, by,
                                         pids.get((o.task_id, o.epoch)))
                if waited is None:
                    stale.add(o.task_id)
                dependents = dependents or bool(waited)
            claims: list[Claim] = []
            if batch.claim > 0:
                claims = self._claim_first(conn, owner, batch.claim, now, answers[-2], answers[-1])
        wake = self.rate_wake_at if batch.claim > 0 else None
        return BatchResult(sorted(stale), claims, dependents, wake)

    def _end_statement(self, owner: str, o: Outcome, now: float, by: str,
                       spawned: Spawned | None) -> Statement:
        lifecycle.check_reason({Status.SUCCEEDED: Verb.SUCCEED, Status.FAILED: Verb.FAIL,
                                Status.STOPPED: Verb.STOP}[o.status], o.reason)
        pid = spawned.pid if spawned else None
        used = o.usage or (None, None, None)
        return ("taskyard_end_ok" if o.status is Status.SUCCEEDED else "taskyard_end",
                (o.status.value, _v(o.reason), o.exit_code, o.signal, _text(o.error), o.result,
                 now, by, now, pid, o.task_id, o.epoch, owner,
                 o.status.value, _v(o.reason), o.exit_code, o.signal, _text(o.error), now,
                 pid, spawned.pid_start if spawned else None, *used, o.task_id, o.epoch))

    def _after_end(self, conn: TickConnection, owner: str, o: Outcome, rows: list[Any],
                   now: float, by: str, spawned: Spawned | None) -> bool | None:
        """What the end's statement left to do: a success refused because the task
        reported an error (the general path records that), a retry of a failure. None
        if the attempt was not ours any more, else whether tasks wait for this one."""
        waited = bool(rows[0][0]) if rows else None
        if waited is None and o.status is Status.SUCCEEDED:
            return self._finish_one(conn.cursor(), owner, o, now, by, spawned)
        if waited is not None and o.status is Status.FAILED and o.reason is not None:
            self._maybe_retry(conn.cursor(), o.task_id, o.epoch, o.reason, now, by)
        return waited

    def _claim_first(self, conn: TickConnection, owner: str, limit: int, now: float,
                     limits: list[Any], found: list[Any]) -> list[Claim]:
        """Claim from the first queued tasks when no limit applies; else the general
        claim (which counts under the claim lock)."""
        self.rate_wake_at = None
        queues = [r for r in limits if r[0] == "q"]
        limited = (any(r[2] is not None or r[4] is not None for r in queues)
                   or any(r[0] == "t" and r[2] is not None for r in limits)
                   or any(r[3] is not None or r[4] is not None for r in found))
        if limited:
            return self._claim(conn.cursor(), owner, limit, now)
        chosen = set(Usage(None, {}, {}).admit([Candidate(*r[:6]) for r in found], limit))
        picked = [r for r in found if r[0] in chosen]
        if not picked:
            return []
        self.claim_status_dirs = {r[1]: r[7] for r in queues if r[7]}
        run_as = {r[1]: r[3] for r in limits if r[0] == "t" and r[3] is not None}
        queue_limits = {r[1]: r[3] for r in queues if r[3] is not None}
        queue_bounds = {r[1]: (r[5], r[6]) for r in queues}
        bounds = {r[0]: self._bounds((r[16], r[17]), queue_bounds.get(r[1])) for r in picked}
        ids = [r[0] for r in picked]
        files = {r[0]: self._status_file(r[0], r[1]) for r in picked}
        (rows,) = conn.commit([(  # the second round trip: the claim and the COMMIT
            "taskyard_claim",
            (lifecycle.target(Verb.CLAIM).value, owner, now, f"server:{owner}", now, _array(ids),
             owner, f"{owner}.", now, _array(ids), _array(bounds[i][0] for i in ids),
             _array(bounds[i][1] for i in ids), [files[i] for i in ids]))])
        epochs = dict(rows)
        return [_claim_of(r, epochs[r[0]], owner, run_as, queue_limits, bounds[r[0]],
                          files[r[0]]) for r in picked if r[0] in epochs]


def _claim_of(r: Sequence[Any], epoch: int, owner: str, run_as: dict[str, str],
              queue_limits: dict[str, str], bounds: tuple[int | None, int | None],
              status_file: str | None) -> Claim:
    """A claim from a row of ``_FIRST_QUEUED`` and the epoch the claim gave it."""
    return Claim(r[0], epoch, tuple(json.loads(r[6])), json.loads(r[7]), r[8], r[9], bool(r[10]),
                 f"{owner}.{r[0]}.{epoch}", r[11], run_as.get(r[2]), r[12], r[13], r[14], r[1],
                 effective(r[15], queue_limits.get(r[1])), *bounds, status_file)
