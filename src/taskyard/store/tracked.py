"""Tracked tasks: work taskyard did not start, reported by the process that does it.

A tracked task is made ``running`` (attempt 1) with the identity of its owner process
(host, boot, pid and start time) in the ``tracked`` table; its attempt's owner is
:data:`OWNER`, which no server is, and which lost-attempt recovery leaves alone: a
tracked task dies with its owner process, not with a server. The row goes when the task
ends. Every write is fenced by the attempt's epoch, like a function's. Mixed into the
SQL stores.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from .. import lifecycle
from ..errors import StaleAttempt
from ..lifecycle import Reason, Status, Verb
from ..model import JSON, Request, Task
from . import rows
from .sql import ACTIVE_IN, SqlStoreBase

#: the ``attempts.owner`` of a tracked attempt (no server's id looks like it)
OWNER = "tracked"


class TrackedOwner(NamedTuple):
    """The process a live tracked task belongs to."""

    task_id: int
    epoch: int
    host: str
    boot_id: str
    pid: int
    pid_start: int | None
    killable: bool


class TrackSpec(NamedTuple):
    """What ``track`` records (validated by the caller)."""

    name: str | None
    meta: str  #: JSON object text
    queue: str
    tenant: str


_OWNER_COLUMNS = "k.task_id, k.epoch, k.host, k.boot_id, k.pid, k.pid_start, k.killable"


def _owner(row: rows.Row) -> TrackedOwner:
    return TrackedOwner(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))


class TrackedStore(SqlStoreBase):
    """Tracked tasks: their making, owners, ends, and stop requests."""

    def track(self, spec: TrackSpec, owner: TrackedOwner, *, by: str) -> Task:
        """A running tracked task owned by ``owner`` (its task id and epoch ignored)."""
        now = time.time()
        with self._tx() as cur:
            if spec.tenant != "default":
                self._require_tenant(cur, spec.tenant)
            cur.execute(
                "INSERT INTO tasks (name, queue, status, argv, env, meta, tenant, epoch, pid,"
                " created_at, started_at, changed_by, changed_at, retry_on, tracked)"
                " VALUES (?,?,?,'[]','{}',?,?,1,?,?,?,?,?,'',1)"
                f" RETURNING {rows.TASK_COLUMNS}",
                (spec.name, spec.queue, lifecycle.target(Verb.TRACK).value, spec.meta,
                 spec.tenant, owner.pid, now, now, by, now))
            task = rows.task(cur.fetchone())
            cur.execute("INSERT INTO attempts (task_id, epoch, owner, run_tag, pid, pid_start,"
                        " started_at) VALUES (?,1,?,?,?,?,?)",
                        (task.id, OWNER, f"tracked.{task.id}", owner.pid, owner.pid_start, now))
            cur.execute("INSERT INTO tracked (task_id, epoch, host, boot_id, pid, pid_start,"
                        " killable) VALUES (?,1,?,?,?,?,?)",
                        (task.id, owner.host, owner.boot_id, owner.pid, owner.pid_start,
                         int(owner.killable)))
            return task

    def tracked_owner(self, task_id: int) -> TrackedOwner | None:
        """The owner of a live tracked task; None once it ended (or for other kinds)."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT {_OWNER_COLUMNS} FROM tracked k WHERE k.task_id=?",
                        (task_id,))
            row = cur.fetchone()
        return _owner(row) if row is not None else None

    def tracked_on_host(self, host: str) -> list[TrackedOwner]:
        """The live tracked tasks owned by processes of ``host`` (any boot)."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT {_OWNER_COLUMNS} FROM tracked k WHERE k.host=?"
                        " ORDER BY k.task_id", (host,))
            return [_owner(r) for r in cur.fetchall()]

    def end_tracked(self, task_id: int, epoch: int, status: Status, reason: Reason | None,
                    error: str | None, *, by: str) -> Task:
        """End a tracked attempt: succeeded, failed (reported or crashed) or stopped
        (killed); StaleAttempt if that attempt is no longer the running one."""
        verb = {Status.SUCCEEDED: Verb.SUCCEED, Status.STOPPED: Verb.STOP}.get(
            status, Verb.CRASH if reason is Reason.CRASHED else Verb.FAIL)
        lifecycle.check_reason(verb, reason)
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "UPDATE tasks SET status=?, reason=?, error=?, finished_at=?, changed_by=?,"
                f" changed_at=? WHERE id=? AND epoch=? AND tracked=1 AND status IN {ACTIVE_IN}"
                f" RETURNING {rows.TASK_COLUMNS}",
                (lifecycle.target(verb).value, reason.value if reason else None, error, now,
                 by, now, task_id, epoch))
            row = cur.fetchone()
            if row is None:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")
            cur.execute("UPDATE attempts SET status=?, reason=?, error=?, finished_at=?"
                        " WHERE task_id=? AND epoch=? AND finished_at IS NULL",
                        (status.value, reason.value if reason else None, error, now,
                         task_id, epoch))
            cur.execute("UPDATE requests SET state='rejected', result=?, done_at=?"
                        " WHERE task_id=? AND state='pending'",
                        (f"task ended ({status})", now, task_id))
            cur.execute("DELETE FROM tracked WHERE task_id=?", (task_id,))
            return rows.task(row)

    # -- kills: signalled by a server on the owner's host, or read by the owner ------

    def tracked_kills(self, host: str) -> list[Request]:
        """Pending kill requests of killable tracked tasks owned on ``host``."""
        with self._read_tx() as cur:
            cur.execute(
                f"SELECT {', '.join('r.' + c for c in rows.REQUEST_COLUMNS.split(', '))}"
                " FROM requests r JOIN tracked k ON k.task_id = r.task_id"
                " WHERE r.state='pending' AND r.kind='kill' AND k.host=? ORDER BY r.id",
                (host,))
            return [rows.request(r) for r in cur.fetchall()]

    def request_tracked_stop(self, task_id: int, payload: JSON, *, by: str) -> Request:
        """Ask the owner of a tracked task to stop (its ``should_stop()`` turns true) and
        record the request it answers by reading it, in one transaction."""
        now = time.time()
        with self._tx() as cur:
            cur.execute(f"UPDATE tasks SET stop_asked=epoch WHERE id=? AND tracked=1"
                        f" AND status IN {ACTIVE_IN} RETURNING epoch", (task_id,))
            row = cur.fetchone()
            if row is None:
                task = self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} is not running (it is {task.status})")
            cur.execute("INSERT INTO requests (task_id, epoch, kind, payload, by, created_at)"
                        f" VALUES (?,?,'stop',?,?,?) RETURNING {rows.REQUEST_COLUMNS}",
                        (task_id, row[0], rows.dumps(payload), by, now))
            return rows.request(cur.fetchone())

    def read_tracked_stop(self, task_id: int, epoch: int) -> int:
        """The owner saw its stop request(s): answered ``done``. Fenced; how many."""
        with self._tx() as cur:
            self._fenced(cur, task_id, epoch, tracked=True)
            cur.execute("UPDATE requests SET state='done', result='read by its owner',"
                        " done_at=? WHERE task_id=? AND epoch=? AND kind='stop'"
                        " AND state='pending'", (time.time(), task_id, epoch))
            return int(cur.rowcount)

    def withdraw_tracked_stop(self, request_id: int, result: str) -> bool:
        """Refuse a stop request its owner did not read (and take the stop back); False
        if it was answered meanwhile."""
        with self._tx() as cur:
            cur.execute("UPDATE requests SET state='rejected', result=?, done_at=?"
                        " WHERE id=? AND state='pending' RETURNING task_id, epoch",
                        (result, time.time(), request_id))
            row = cur.fetchone()
            if row is None:
                return False
            cur.execute("UPDATE tasks SET stop_asked=0 WHERE id=? AND epoch=? AND stop_asked=?"
                        " AND NOT EXISTS (SELECT 1 FROM requests WHERE task_id=? AND"
                        " kind='stop' AND state <> 'rejected')",
                        (row[0], row[1], row[1], row[0]))
            return True
