"""Store logic shared by the SQL backends: the client half.

SQL here is written with ``?`` placeholders and portable statements
(``UPDATE … RETURNING``, partial indexes); a backend supplies the connection,
the transaction and the few dialect differences.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .. import lifecycle, limits
from ..errors import NotFound, StaleAttempt, StoreError, StoreUnavailable, TransitionError
from ..lifecycle import Reason, Status, Verb
from ..model import JSON, Attempt, Event, OutputRead, Request, Task, TaskSpec
from ..rates import task_key
from . import rows


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Any) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def in_list(statuses: frozenset[Status]) -> str:
    """A literal ``IN`` list for statuses (enum values, never user input)."""
    return "(" + ",".join(f"'{s.value}'" for s in sorted(statuses)) + ")"


#: tables whose rows belong to a task, removed with it
OWNED = ("chunks", "streams", "messages", "message_counts", "requests", "events", "attempts",
         "signals", "hook_outbox", "idempotency")
ACTIVE_IN = in_list(lifecycle.ACTIVE)
#: Of an event ``e``: for a claim, how long its task waited queued; for the end of a run,
#: how long it ran; else NULL (metrics and stats read it)
EVENT_SECONDS = (
    "CASE WHEN e.from_status = 'queued' AND e.to_status = 'running' THEN e.at -"
    " (SELECT p.at FROM events p WHERE p.task_id = e.task_id AND p.id < e.id"
    "  ORDER BY p.id DESC LIMIT 1)"
    " WHEN e.from_status IN ('running', 'paused')"
    "  AND e.to_status IN ('succeeded', 'failed', 'stopped') THEN e.at -"
    " (SELECT a.started_at FROM attempts a WHERE a.task_id = e.task_id"
    "  AND a.epoch = e.attempt) END")
#: an event ``e`` that is a transition, not a note (a hook's delivery changes no status)
NOT_A_NOTE = "(e.from_status IS NULL OR e.from_status <> e.to_status)"
WAITING_IN = in_list(lifecycle.sources(Verb.CANCEL))
TERMINAL_IN = in_list(lifecycle.sources(Verb.RESTART))
LIVE_IN = in_list(frozenset(Status) - lifecycle.TERMINAL)


def fault_budget(kind: str = "store-write-fail-after") -> int | None:
    """Test hooks. ``TASKYARD_FAULT=store-write-fail-after:N`` makes the N+1th write
    transaction of this process fail, as a full disk or an I/O error would;
    ``store-lost-answer-every:N`` reports the connection lost on every Nth write
    transaction, alternately before it was sent (nothing is written) and after it
    committed (the answer was lost), as a network cut would."""
    fault = os.environ.get("TASKYARD_FAULT", "")
    name, _, count = fault.partition(":")
    if name == kind and count.isdigit():
        return int(count)
    return None


#: the columns a submit writes, and a row's placeholders
INSERT_COLUMNS = (
    "name, queue, status, argv, env, cwd, meta, stdin, stdin_open, timeout, priority, run_at,"
    " retries, retry_delay, backoff, retry_on, unique_key, mutex, tenant, schedule, fire_at,"
    " function, kwargs, created_at, changed_by, changed_at, fds, fd_list, on_finish, hook_for,"
    " hook_attempt, keep, limits, rate_key, rate, output_head, output_tail")
INSERT_MARKS = ",".join("?" * (INSERT_COLUMNS.count(",") + 1))


def insert_values(spec: TaskSpec, status: Status, by: str, now: float,
                  schedule: str | None = None, fire_at: float | None = None,
                  hook_for: tuple[int, int] | None = None) -> tuple[Any, ...]:
    """A submitted task's row, in :data:`INSERT_COLUMNS` order."""
    return (spec.name, spec.queue, status.value,
            rows.dumps(list(spec.argv)), rows.dumps(spec.env), spec.cwd,
            rows.dumps(spec.meta), spec.stdin, int(spec.stdin_open), spec.timeout,
            spec.priority, spec.run_at, spec.retries, spec.retry_delay, spec.backoff,
            ",".join(spec.retry_on), spec.unique, spec.mutex, spec.tenant, schedule,
            fire_at, spec.function,
            rows.dumps(spec.kwargs) if spec.kwargs is not None else None, now, by, now,
            rows.fds_json(spec.fds), rows.fds_list(spec.fds),
            rows.dumps(list(spec.on_finish)) if spec.on_finish is not None else None,
            *(hook_for or (None, None)), int(spec.keep), limits.dumps(spec.limits),
            *rows.rate_columns(spec.rate_limit), spec.output_head, spec.output_tail)


class SqlStoreBase:
    """Client operations. Subclasses implement :meth:`_tx` and :meth:`_read_tx`.

    Dialect hooks (class attributes, SQLite values here) cover where the backends'
    SQL differs; everything else is one statement for both.
    """

    LENGTH = "length"  #: byte length of a BLOB
    KEY_LOCK = ""  #: a statement serializing writers of one key (SQLite's write lock does)
    IS_NOT = "IS NOT"  #: null-safe inequality (``IS DISTINCT FROM`` on PostgreSQL)
    #: appended to the claim's subquery: rows another transaction is claiming are skipped,
    #: not waited for (SQLite has one writer at a time, so nothing to add)
    CLAIM_LOCK = ""
    #: run first in a claim: claims take turns, so limits counted in one claim cannot be
    #: exceeded by a concurrent one (SQLite's write lock already does it)
    CLAIM_SERIALIZE = ""
    #: appended to a SELECT of a row a write transaction then changes: under READ
    #: COMMITTED the check and the write must see the same row (SQLite's BEGIN IMMEDIATE
    #: already serialises writers)
    ROW_LOCK = ""

    _fail_after: int | None = None
    _lose_every: int | None = None
    _writes = 0
    location = "store"  #: where the store is, for messages (never a password)

    def _tx(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _injected_fault(self) -> None:
        """Count a write transaction against TASKYARD_FAULT's budget (tests only)."""
        if self._fail_after is None:
            return
        if self._fail_after <= 0:
            raise StoreError(f"store {self.location}: injected write failure (TASKYARD_FAULT)")
        self._fail_after -= 1

    def _injected_loss(self) -> bool:
        """Before a write transaction: every Nth one is lost, alternately at once
        (raised here) and after its commit (True: the caller raises then). Tests only."""
        if self._lose_every is None:
            return False
        self._writes += 1
        if self._writes % self._lose_every:
            return False
        if (self._writes // self._lose_every) % 2:
            raise StoreUnavailable(f"store {self.location}: injected lost connection"
                                   " (TASKYARD_FAULT)")
        return True

    def _lost_answer(self) -> None:
        raise StoreUnavailable(f"store {self.location}: injected lost answer after a commit"
                               " (TASKYARD_FAULT)")

    def _read_tx(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _fetch_task(self, cur: Cursor, task_id: int, *, lock: bool = False) -> Task:
        """The task's row; ``lock`` when the transaction goes on to change it."""
        cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE id = ?"
                    f"{self.ROW_LOCK if lock else ''}", (task_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no task {task_id}", field="id")
        return rows.task(row)

    def _fenced(self, cur: Cursor, task_id: int, epoch: int, *, tracked: bool = False) -> None:
        """Raise StaleAttempt unless ``epoch`` is the task's current, active attempt (of
        a tracked task, with ``tracked``); the row stays locked for the write that
        follows. A task that does not exist is NotFound."""
        only_tracked = " AND tracked=1" if tracked else ""
        cur.execute(f"SELECT 1 FROM tasks WHERE id=? AND epoch=?{only_tracked}"
                    f" AND status IN {ACTIVE_IN}{self.ROW_LOCK}", (task_id, epoch))
        if cur.fetchone() is None:
            self._fetch_task(cur, task_id)
            raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    # -- submit and read ------------------------------------------------------

    def submit(self, spec: TaskSpec, *, by: str) -> Task:
        with self._tx() as cur:
            return self._submit(cur, spec, by=by)

    def _submit(self, cur: Cursor, spec: TaskSpec, *, by: str, schedule: str | None = None,
                fire_at: float | None = None, hook_for: tuple[int, int] | None = None) -> Task:
        now = time.time()
        later = spec.run_at is not None and spec.run_at > now
        if spec.unique is not None:
            existing = self._live_with_key(cur, spec.unique, spec.tenant)
            if existing is not None:
                return existing
        if spec.tenant != "default":
            self._require_tenant(cur, spec.tenant)
        waits = self._dependencies_pending(cur, spec.after)
        verb = Verb.DEFER if later or waits else Verb.SUBMIT
        cur.execute(f"INSERT INTO tasks ({INSERT_COLUMNS}) VALUES ({INSERT_MARKS})"
                    f" RETURNING {rows.TASK_COLUMNS}",
                    insert_values(spec, lifecycle.target(verb), by, now, schedule, fire_at,
                                  hook_for))
        task = rows.task(cur.fetchone())
        if spec.rate_limit is not None:
            from .rates import declare

            declare(cur, task_key(spec.rate_limit.key), spec.rate_limit.rate)
        if spec.after:
            cur.executemany("INSERT INTO deps (task_id, after_id) VALUES (?, ?)",
                            [(task.id, after) for after in sorted(set(spec.after))])
        return task

    def _require_tenant(self, cur: Cursor, name: str) -> None:
        cur.execute("SELECT 1 FROM tenants WHERE name=?", (name,))
        if cur.fetchone() is None:
            raise NotFound(f"no tenant {name!r} (add it with: taskyard tenant add {name})",
                           field="tenant")

    def _live_with_key(self, cur: Cursor, key: str, tenant: str) -> Task | None:
        """The tenant's live task with unique ``key``: each tenant has keys of its own
        (writers of one key take turns: SQLite's write lock, a transaction-scoped
        advisory lock on PostgreSQL)."""
        if self.KEY_LOCK:
            cur.execute(self.KEY_LOCK, (f"unique:{tenant}:{key}",))
        cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE unique_key=? AND tenant=?"
                    f" AND status IN {LIVE_IN} ORDER BY id LIMIT 1", (key, tenant))
        row = cur.fetchone()
        return rows.task(row) if row else None

    def _dependencies_pending(self, cur: Cursor, after: Sequence[int]) -> bool:
        """Whether any of ``after`` has not succeeded yet; unknown ids are an error."""
        if not after:
            return False
        wanted = sorted(set(after))
        cur.execute(f"SELECT id, status FROM tasks WHERE id IN ({','.join('?' * len(wanted))})",
                    wanted)
        found = {row[0]: row[1] for row in cur.fetchall()}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"--after: no task {missing[0]}", field="after")
        return any(status != Status.SUCCEEDED.value for status in found.values())

    def get(self, task_id: int) -> Task:
        with self._read_tx() as cur:
            return self._fetch_task(cur, task_id)

    def attempts(self, task_id: int) -> list[Attempt]:
        with self._read_tx() as cur:
            self._fetch_task(cur, task_id)
            cur.execute(f"SELECT {rows.ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ?"
                        " ORDER BY epoch", (task_id,))
            return [rows.attempt(r) for r in cur.fetchall()]

    def events(self, task_id: int) -> list[Event]:
        with self._read_tx() as cur:
            self._fetch_task(cur, task_id)
            cur.execute(f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE task_id = ? ORDER BY id",
                        (task_id,))
            return [rows.event(r) for r in cur.fetchall()]

    def read_output(self, task_id: int, stream: str, offset: int, limit: int | None,
                    epoch: int | None = None) -> OutputRead:
        """Up to ``limit`` kept bytes from ``offset``. A stream has at most one dropped
        range (between the kept head and the kept tail): a read that starts in it
        reports the whole range and continues after it; a read never crosses it."""
        with self._read_tx() as cur:
            task = self._fetch_task(cur, task_id)
            epoch = task.attempt if epoch is None else epoch
            key = (task_id, epoch, stream)
            cur.execute("SELECT total, head FROM streams WHERE task_id=? AND epoch=? AND stream=?",
                        key)
            row = cur.fetchone()
            total, head = (row[0], row[1]) if row else (0, 0)
            gap_end = total
            if total > head:
                cur.execute('SELECT MIN("offset") FROM chunks WHERE task_id=? AND epoch=?'
                            ' AND stream=? AND "offset" >= ?', (*key, head))
                found = cur.fetchone()[0]
                gap_end = total if found is None else found
            start, dropped = offset, None
            if head <= offset < gap_end:
                dropped, start = (offset, gap_end), gap_end
            stop = total if limit is None else min(total, start + limit)
            if start < head < stop and gap_end > head:
                stop = head  # never cross the dropped range in one read
            cur.execute(
                f'SELECT "offset", data FROM chunks WHERE task_id=? AND epoch=? AND stream=?'
                f' AND "offset" < ? AND "offset" + {self.LENGTH}(data) > ? ORDER BY "offset"',
                (*key, stop, start),
            )
            chunks = cur.fetchall()
            cur.execute("SELECT finished_at FROM attempts WHERE task_id=? AND epoch=?",
                        (task_id, epoch))
            arow = cur.fetchone()
        finished = arow is None or arow[0] is not None
        data = _assemble(start, stop, chunks)
        return OutputRead(stream, offset, data, total, dropped,
                          max(offset, start + len(data)), finished)

    # -- user mutations -------------------------------------------------------

    def cancel(self, task_id: int, *, by: str) -> Task | None:
        """Stop a task that has not started; None if it is not waiting any more."""
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                f"UPDATE tasks SET status=?, reason=?, finished_at=?, changed_by=?, changed_at=?"
                f" WHERE id=? AND status IN {WAITING_IN} RETURNING {rows.TASK_COLUMNS}",
                (lifecycle.target(Verb.CANCEL).value, Reason.KILLED.value, now, by, now, task_id),
            )
            row = cur.fetchone()
            if row is None:
                self._fetch_task(cur, task_id)
                return None
            return rows.task(row)

    def add_request(self, task_id: int, kind: str, payload: JSON, *, by: str) -> Request:
        now = time.time()
        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if not task.status.active:
                raise TransitionError(f"cannot {kind} task {task_id}: it is {task.status}")
            cur.execute(
                "INSERT INTO requests (task_id, epoch, kind, payload, by, created_at)"
                f" VALUES (?,?,?,?,?,?) RETURNING {rows.REQUEST_COLUMNS}",
                (task_id, task.attempt, kind,
                 rows.dumps(payload) if payload is not None else None, by, now),
            )
            return rows.request(cur.fetchone())

    def get_request(self, request_id: int) -> Request:
        with self._read_tx() as cur:
            cur.execute(f"SELECT {rows.REQUEST_COLUMNS} FROM requests WHERE id=?", (request_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no request {request_id}")
        return rows.request(row)

    def restart(self, task_id: int, *, by: str) -> Task:
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "UPDATE tasks SET status=?, reason=NULL, exit_code=NULL, signal=NULL, error=NULL,"
                " pid=NULL, started_at=NULL, finished_at=NULL, progress_done=NULL, retried=0,"
                " progress_total=NULL, progress_message=NULL, changed_by=?, changed_at=?"
                f" WHERE id=? AND status IN {TERMINAL_IN} RETURNING {rows.TASK_COLUMNS}",
                (lifecycle.target(Verb.RESTART).value, by, now, task_id),
            )
            row = cur.fetchone()
            if row is None:
                task = self._fetch_task(cur, task_id)
                lifecycle.require(Verb.RESTART, task.status, task_id=task_id)
            return rows.task(row)

    def delete(self, task_id: int) -> None:
        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if not task.terminal:
                raise TransitionError(f"cannot rm task {task_id}: it is {task.status}"
                                      " (kill it first, or use --force)")
            waiting = self._waiting_on(cur, task_id)
            if waiting is not None:
                raise TransitionError(f"cannot rm task {task_id}: task {waiting} waits for"
                                      " it (--after)")
            for table in (*OWNED, "deps"):
                cur.execute(f"DELETE FROM {table} WHERE task_id=?", (task_id,))
            cur.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    def waiting_on(self, task_id: int) -> int | None:
        """A scheduled task that waits for ``task_id`` (``--after``), if any."""
        with self._read_tx() as cur:
            return self._waiting_on(cur, task_id)

    def _waiting_on(self, cur: Cursor, task_id: int) -> int | None:
        cur.execute("SELECT d.task_id FROM deps d JOIN tasks t ON t.id = d.task_id"
                    " WHERE d.after_id=? AND t.status=? ORDER BY d.task_id LIMIT 1",
                    (task_id, Status.SCHEDULED.value))
        row = cur.fetchone()
        return int(row[0]) if row is not None else None


def _assemble(start: int, stop: int, chunks: Sequence[tuple[int, bytes]]) -> bytes:
    """Join stored chunks (sorted, contiguous over the range) into bytes [start, stop)."""
    parts = []
    for offset, data in chunks:
        parts.append(bytes(data)[max(0, start - offset): stop - offset])
    return b"".join(parts)
