"""Store logic shared by the SQL backends: the client half.

SQL here is written with ``?`` placeholders and portable statements
(``UPDATE … RETURNING``, partial indexes); a backend supplies the connection,
the transaction and the few dialect differences.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import EllipsisType
from typing import Any, Protocol

from .. import lifecycle
from ..errors import NotFound, StaleAttempt, StoreError, StoreUnavailable, TransitionError
from ..lifecycle import Reason, Status, Verb
from ..model import JSON, Attempt, Event, OutputRead, Request, Schedule, Task, TaskSpec, iso
from . import rows
from .base import Instance, Owner
from .jsonpatch import merge_patch


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


ACTIVE_IN = in_list(lifecycle.ACTIVE)
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

    # -- submit and read ------------------------------------------------------

    def submit(self, spec: TaskSpec, *, by: str) -> Task:
        with self._tx() as cur:
            return self._submit(cur, spec, by=by)

    def _submit(self, cur: Cursor, spec: TaskSpec, *, by: str, schedule: str | None = None,
                fire_at: float | None = None) -> Task:
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
        cur.execute(
            "INSERT INTO tasks (name, queue, status, argv, env, cwd, meta, stdin, stdin_open,"
            " timeout, priority, run_at, retries, retry_delay, backoff, retry_on, unique_key,"
            " mutex, tenant, schedule, fire_at, function, kwargs, created_at, changed_by,"
            " changed_at, fds, fd_list) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
            "?,?,?)"
            f" RETURNING {rows.TASK_COLUMNS}",
            (spec.name, spec.queue, lifecycle.target(verb).value,
             rows.dumps(list(spec.argv)), rows.dumps(spec.env), spec.cwd,
             rows.dumps(spec.meta), spec.stdin, int(spec.stdin_open), spec.timeout,
             spec.priority, spec.run_at, spec.retries, spec.retry_delay, spec.backoff,
             ",".join(spec.retry_on), spec.unique, spec.mutex, spec.tenant, schedule,
             fire_at, spec.function,
             rows.dumps(spec.kwargs) if spec.kwargs is not None else None, now, by, now,
             rows.fds_json(spec.fds), rows.fds_list(spec.fds)),
        )
        task = rows.task(cur.fetchone())
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

    def list_tasks(self, *, status: Sequence[Status] = (), queue: str | None = None,
             limit: int | None = None) -> list[Task]:
        where: list[str] = []
        params: list[object] = []
        if status:
            where.append("status IN (" + ",".join("?" * len(status)) + ")")
            params.extend(s.value for s in status)
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        sql = f"SELECT {rows.TASK_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read_tx() as cur:
            cur.execute(sql, params)
            found = [rows.task(r) for r in cur.fetchall()]
        found.reverse()
        return found

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
            for table in ("chunks", "streams", "requests", "events", "attempts", "deps"):
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

    def patch_meta(self, task_id: int, patch: dict[str, JSON], max_bytes: int,
                   epoch: int | None = None) -> Task:
        """Merge-patch the metadata; with ``epoch``, only while that attempt runs."""
        from ..validate import check_meta

        check_meta(patch, max_bytes)  # before merging: depth, types, a cycle
        with self._tx() as cur:
            if epoch is not None:
                self._fenced(cur, task_id, epoch)
            task = self._fetch_task(cur, task_id, lock=True)
            merged = merge_patch(task.meta, patch)
            text = check_meta(merged, max_bytes)
            cur.execute(f"UPDATE tasks SET meta=? WHERE id=? RETURNING {rows.TASK_COLUMNS}",
                        (text, task_id))
            return rows.task(cur.fetchone())

    def set_progress(self, task_id: int, epoch: int, done: float | None, total: float | None,
                     message: str | None) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE tasks SET progress_done=?, progress_total=?, progress_message=?"
                f" WHERE id=? AND epoch=? AND status IN {ACTIVE_IN}",
                (done, total, message, task_id, epoch),
            )
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    # -- inside a running attempt (fenced by its epoch) and its operators --------------

    def _fenced(self, cur: Cursor, task_id: int, epoch: int) -> None:
        """Raise StaleAttempt unless ``epoch`` is the task's current, active attempt."""
        cur.execute(f"SELECT 1 FROM tasks WHERE id=? AND epoch=? AND status IN {ACTIVE_IN}"
                    f"{self.ROW_LOCK}", (task_id, epoch))
        if cur.fetchone() is None:
            self._fetch_task(cur, task_id)
            raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    def checkpoint(self, task_id: int, epoch: int, state: str) -> None:
        """Save a JSON state; the next attempt (retry, restart, crash) starts from it."""
        with self._tx() as cur:
            cur.execute(f"UPDATE tasks SET state=?, state_epoch=? WHERE id=? AND epoch=?"
                        f" AND status IN {ACTIVE_IN}", (state, epoch, task_id, epoch))
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    def load_state(self, task_id: int) -> tuple[str | None, int | None]:
        """The last checkpoint (JSON text) and the attempt that saved it."""
        with self._read_tx() as cur:
            self._fetch_task(cur, task_id)
            cur.execute("SELECT state, state_epoch FROM tasks WHERE id=?", (task_id,))
            row = cur.fetchone()
        return row[0], row[1]

    def set_steps(self, task_id: int, epoch: int, steps: str, state: str | None) -> None:
        """A multi-step task's status (and its checkpoint with it), fenced."""
        with self._tx() as cur:
            if state is None:
                cur.execute(f"UPDATE tasks SET steps=? WHERE id=? AND epoch=?"
                            f" AND status IN {ACTIVE_IN}", (steps, task_id, epoch))
            else:
                cur.execute(f"UPDATE tasks SET steps=?, state=?, state_epoch=? WHERE id=?"
                            f" AND epoch=? AND status IN {ACTIVE_IN}",
                            (steps, state, epoch, task_id, epoch))
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    def poll_task(self, task_id: int) -> tuple[int, int, int, str]:
        """What a running task checks often and cheaply: (config version, the epoch a
        graceful stop was asked for, unacknowledged signals, status)."""
        with self._read_tx() as cur:
            cur.execute("SELECT config_version, stop_asked, status FROM tasks WHERE id=?",
                        (task_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no task {task_id}", field="id")
            cur.execute("SELECT COUNT(*) FROM signals WHERE task_id=? AND acked_at IS NULL",
                        (task_id,))
            pending = cur.fetchone()[0]
        return int(row[0]), int(row[1]), int(pending), str(row[2])

    def get_config(self, task_id: int) -> tuple[int, dict[str, JSON]]:
        with self._read_tx() as cur:
            cur.execute("SELECT config_version, config FROM tasks WHERE id=?", (task_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no task {task_id}", field="id")
        return int(row[0]), json.loads(row[1])

    def set_config(self, task_id: int, patch: dict[str, JSON], max_bytes: int) -> Task:
        """Merge-patch a task's live config (it sees the change on its next read)."""
        from ..validate import check_meta

        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if task.terminal:
                raise TransitionError(f"cannot change the config of task {task_id}: it is"
                                      f" {task.status}")
            text = check_meta(merge_patch(task.config, patch), max_bytes)
            cur.execute("UPDATE tasks SET config=?, config_version=config_version+1 WHERE id=?"
                        f" RETURNING {rows.TASK_COLUMNS}", (text, task_id))
            return rows.task(cur.fetchone())

    def send_signal(self, task_id: int, name: str, data: str | None, *,
                    by: str) -> dict[str, JSON]:
        """Queue a custom signal for the task to read; only for a task not yet ended."""
        now = time.time()
        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if task.terminal:
                raise TransitionError(f"cannot signal task {task_id}: it is {task.status}")
            cur.execute("INSERT INTO signals (task_id, name, data, by, sent_at)"
                        " VALUES (?,?,?,?,?) RETURNING id", (task_id, name, data, by, now))
            signal_id = cur.fetchone()[0]
        return {"id": signal_id, "task_id": task_id, "name": name,
                "data": json.loads(data) if data is not None else None, "sent_at": iso(now)}

    def signals(self, task_id: int, epoch: int | None = None,
                clear: bool = False) -> list[dict[str, JSON]]:
        """Signals not yet acknowledged, oldest first; ``clear`` acknowledges them (only
        the task's current attempt may: fenced by ``epoch``)."""
        with self._tx() if clear else self._read_tx() as cur:
            if clear:
                assert epoch is not None
                self._fenced(cur, task_id, epoch)
            else:
                self._fetch_task(cur, task_id)
            cur.execute("SELECT id, name, data, by, sent_at FROM signals WHERE task_id=?"
                        " AND acked_at IS NULL ORDER BY id", (task_id,))
            found = cur.fetchall()
            if clear and found:
                cur.execute("UPDATE signals SET acked_at=? WHERE task_id=? AND acked_at IS NULL"
                            " AND id <= ?", (time.time(), task_id, found[-1][0]))
        return [{"id": r[0], "name": r[1], "data": json.loads(r[2]) if r[2] is not None else None,
                 "by": r[3], "sent_at": iso(r[4])} for r in found]

    def others_waiting(self, task_id: int) -> bool:
        """Whether a task other than ``task_id`` is queued (for a multi-step task to
        decide whether to give its slot back)."""
        with self._read_tx() as cur:
            cur.execute("SELECT 1 FROM tasks WHERE status=? AND id <> ? LIMIT 1",
                        (Status.QUEUED.value, task_id))
            return cur.fetchone() is not None

    def ask_stop(self, task_id: int) -> Task:
        """Ask the running attempt to stop by itself (``ctx.should_stop()`` turns true)."""
        with self._tx() as cur:
            cur.execute(f"UPDATE tasks SET stop_asked=epoch WHERE id=? AND status IN {ACTIVE_IN}"
                        f" RETURNING {rows.TASK_COLUMNS}", (task_id,))
            row = cur.fetchone()
            if row is None:
                task = self._fetch_task(cur, task_id)
                raise TransitionError(f"cannot stop task {task_id} gracefully: it is"
                                      f" {task.status}")
            return rows.task(row)

    # -- queues -------------------------------------------------------------------

    def set_queue_paused(self, name: str, paused: bool) -> None:
        """Pause a queue (its queued tasks are not claimed; running ones go on) or resume it."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, paused) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                        (name, int(paused)))

    def set_queue_parallel(self, name: str, parallel: int | None) -> None:
        """At most ``parallel`` tasks of queue ``name`` run at a time (None: no limit);
        with 1 they run one after another in claim order."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, parallel) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET parallel = excluded.parallel",
                        (name, parallel))

    def queues(self) -> list[dict[str, JSON]]:
        """Every queue that has tasks or settings, with its task count per status."""
        with self._read_tx() as cur:
            cur.execute("SELECT queue, status, COUNT(*) FROM tasks GROUP BY queue, status")
            counts = cur.fetchall()
            cur.execute("SELECT name, paused, parallel FROM queues")
            settings = {row[0]: (bool(row[1]), row[2]) for row in cur.fetchall()}
        found: dict[str, dict[str, JSON]] = {}
        for name in sorted({row[0] for row in counts} | set(settings)):
            paused, parallel = settings.get(name, (False, None))
            found[name] = {"name": name, "paused": paused, "parallel": parallel,
                           "tasks": {s.value: 0 for s in Status}}
        for queue, status, count in counts:
            found[queue]["tasks"][status] = count
        return list(found.values())

    # -- tenants ----------------------------------------------------------------------

    def add_tenant(self, name: str, *, enabled: bool = True, run_as: str | None = None,
                   parallel: int | None = None) -> dict[str, JSON]:
        with self._tx() as cur:
            cur.execute("INSERT INTO tenants (name, enabled, run_as, parallel, created_at)"
                        " VALUES (?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
                        (name, int(enabled), run_as, parallel, time.time()))
            if cur.rowcount == 0:
                raise TransitionError(f"tenant {name!r} exists already", field="name")
            return self._tenant(cur, name)

    def update_tenant(self, name: str, *, enabled: bool | None = None,
                      run_as: str | None | EllipsisType = ...,
                      parallel: int | None | EllipsisType = ...) -> dict[str, JSON]:
        """Change what is given (``...``: leave as it is; None clears run_as/parallel)."""
        changes: dict[str, object] = {}
        if enabled is not None:
            changes["enabled"] = int(enabled)
        if not isinstance(run_as, EllipsisType):
            changes["run_as"] = run_as
        if not isinstance(parallel, EllipsisType):
            changes["parallel"] = parallel
        with self._tx() as cur:
            if changes:
                cur.execute(f"UPDATE tenants SET {', '.join(f'{c}=?' for c in changes)}"
                            " WHERE name=?", (*changes.values(), name))
            return self._tenant(cur, name)

    def _tenant(self, cur: Cursor, name: str) -> dict[str, JSON]:
        cur.execute("SELECT name, enabled, run_as, parallel, created_at FROM tenants"
                    " WHERE name=?", (name,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {name!r}", field="name")
        return _tenant_json(row)

    def tenants(self) -> list[dict[str, JSON]]:
        """Every tenant with its settings and live task counts."""
        with self._read_tx() as cur:
            cur.execute("SELECT name, enabled, run_as, parallel, created_at FROM tenants"
                        " ORDER BY name")
            found = [_tenant_json(r) for r in cur.fetchall()]
            cur.execute(f"SELECT tenant, status, COUNT(*) FROM tasks WHERE status IN {LIVE_IN}"
                        " GROUP BY tenant, status")
            counts = cur.fetchall()
        by_name = {t["name"]: t for t in found}
        for tenant in found:
            tenant["tasks"] = {s.value: 0 for s in Status if not s.terminal}
        for name, status, count in counts:
            if name in by_name:
                by_name[name]["tasks"][status] = count
        return found

    # -- cron schedules -----------------------------------------------------------------

    def add_schedule(self, sched: Schedule) -> Schedule:
        """Store a new schedule (validated by the caller); its first tick comes after now."""
        from ..cron import next_fire

        with self._tx() as cur:
            self._require_tenant(cur, sched.tenant)
            cur.execute("INSERT INTO schedules (name, expr, tz, tenant, catch_up, max_lag, spec,"
                        " paused, last_tick, next_at, fired, created_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
                        (sched.name, sched.expr, sched.tz, sched.tenant, sched.catch_up,
                         sched.max_lag, rows.schedule_spec(sched.spec), int(sched.paused),
                         sched.created_at, next_fire(sched.expr, sched.tz, sched.created_at),
                         0, sched.created_at))
            if cur.rowcount == 0:
                raise TransitionError(f"schedule {sched.name!r} exists already (cron rm it"
                                      " first)", field="name")
            return self._schedule(cur, sched.name)

    def _schedule(self, cur: Cursor, name: str, *, lock: bool = False) -> Schedule:
        cur.execute(f"SELECT {rows.SCHEDULE_COLUMNS} FROM schedules WHERE name=?"
                    f"{self.ROW_LOCK if lock else ''}", (name,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no schedule {name!r}", field="name")
        return rows.schedule(row)

    def get_schedule(self, name: str) -> Schedule:
        with self._read_tx() as cur:
            return self._schedule(cur, name)

    def schedules(self) -> list[Schedule]:
        with self._read_tx() as cur:
            cur.execute(f"SELECT {rows.SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
            return [rows.schedule(r) for r in cur.fetchall()]

    def remove_schedule(self, name: str) -> None:
        """Fire no more ticks; the tasks it fired stay."""
        with self._tx() as cur:
            cur.execute("DELETE FROM schedules WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"no schedule {name!r}", field="name")

    def set_schedule_paused(self, name: str, paused: bool) -> Schedule:
        """Pause (ticks pass unfired) or resume: ticks missed while paused are not
        caught up; the next one is the first after now."""
        from ..cron import next_fire

        now = time.time()
        with self._tx() as cur:
            sched = self._schedule(cur, name, lock=True)
            if not paused and sched.paused:
                cur.execute("UPDATE schedules SET paused=0, last_tick=?, next_at=? WHERE name=?",
                            (now, next_fire(sched.expr, sched.tz, now), name))
            elif paused:
                cur.execute("UPDATE schedules SET paused=1 WHERE name=?", (name,))
            return self._schedule(cur, name)

    def run_schedule(self, name: str, *, by: str) -> Task:
        """Fire one task of the schedule now, outside its ticks (its tick stays unset)."""
        with self._tx() as cur:
            sched = self._schedule(cur, name)
            return self._submit(cur, sched.spec, by=by, schedule=name)

    # -- servers, seen from a client -------------------------------------------

    def instances(self) -> list[Instance]:
        """Servers that have not stopped (nor been fenced), oldest first."""
        with self._read_tx() as cur:
            cur.execute("SELECT id, host, boot_id, pid, slots, started_at, heartbeat_at,"
                        " stopped_at, stop_request FROM instances WHERE stopped_at IS NULL"
                        " ORDER BY started_at")
            return [Instance(*r) for r in cur.fetchall()]

    def active_owners(self) -> list[Owner]:
        """The servers that own running or paused tasks, with those tasks, in order of
        server id (whether they are alive is for the reader to judge)."""
        with self._read_tx() as cur:
            cur.execute("SELECT t.owner, t.id, i.host, i.boot_id, i.pid, i.heartbeat_at,"
                        " i.stopped_at FROM tasks t LEFT JOIN instances i ON i.id = t.owner"
                        f" WHERE t.status IN {ACTIVE_IN} AND t.owner IS NOT NULL"
                        " ORDER BY t.owner, t.id")
            found = cur.fetchall()
        grouped: dict[str, tuple[list[int], list[Any]]] = {}
        for owner, task_id, *instance in found:
            grouped.setdefault(owner, ([], instance))[0].append(task_id)
        return [Owner(owner, tuple(ids), *instance)
                for owner, (ids, instance) in grouped.items()]

    def request_stop(self, instance_id: str, mode: str) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE instances SET stop_request=? WHERE id=? AND stopped_at IS NULL",
                        (mode, instance_id))
            if cur.rowcount == 0:
                raise NotFound(f"no running server instance {instance_id}")


def _tenant_json(row: Sequence[Any]) -> dict[str, JSON]:
    return {"name": row[0], "enabled": bool(row[1]), "run_as": row[2], "parallel": row[3],
            "created_at": iso(row[4]) if row[4] else None}


def _assemble(start: int, stop: int, chunks: Sequence[tuple[int, bytes]]) -> bytes:
    """Join stored chunks (sorted, contiguous over the range) into bytes [start, stop)."""
    parts = []
    for offset, data in chunks:
        parts.append(bytes(data)[max(0, start - offset): stop - offset])
    return b"".join(parts)
