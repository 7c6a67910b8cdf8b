"""Finish hooks as the store keeps them: the outbox a task's end fills (a SQL trigger,
in the same transaction as the end) and servers empty. Mixed into the SQL stores.

A command hook becomes a task of its own in queue ``_hooks`` (:meth:`enqueue_hook`:
the outbox row is deleted in the transaction that inserts the hook task, so two servers
can never both make it). A webhook row stays until it is delivered or given up; a
server delivering it holds it for a while (``holder``, ``next_at``), and a server that
dies meanwhile lets it fall due again: delivery is at least once.
"""

from __future__ import annotations

import time
from types import EllipsisType
from typing import NamedTuple

from ..model import Task, TaskSpec
from . import rows
from .sql import Cursor, SqlStoreBase

HOOK_QUEUE = "_hooks"
#: what a hook task's environment says of the task it reports on, where any other
#: task's would speak of itself
REPORTED_KEYS = ("TASKYARD_TASK_ID", "TASKYARD_ATTEMPT", "TASKYARD_STATUS_FILE")


class DueHook(NamedTuple):
    """An outbox row: the hook of attempt ``attempt`` of task ``task_id``."""

    id: int
    task_id: int
    attempt: int
    kind: str  #: command | url
    target: str  #: JSON argv, or the URL
    created_at: float
    tries: int


_HOOK_COLUMNS = "id, task_id, attempt, kind, target, created_at, tries"


class HookStore(SqlStoreBase):
    """The outbox of finish hooks and the settings that fill it."""

    def set_queue_hooks(self, name: str, *, on_finish: str | None | EllipsisType = ...,
                        url: str | None | EllipsisType = ...) -> None:
        """A queue's own hook command (JSON argv; ``'[]'``: none) and webhook URL
        (``''``: none); None: the server's again; ``...``: unchanged."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                        (name,))
            if not isinstance(on_finish, EllipsisType):
                cur.execute("UPDATE queues SET on_finish=? WHERE name=?", (on_finish, name))
            if not isinstance(url, EllipsisType):
                cur.execute("UPDATE queues SET on_finish_url=? WHERE name=?", (url, name))

    def queue_hooks(self) -> dict[str, tuple[str | None, str | None]]:
        """Queues with a hook of their own: name -> (JSON argv, URL)."""
        with self._read_tx() as cur:
            cur.execute("SELECT name, on_finish, on_finish_url FROM queues"
                        " WHERE on_finish IS NOT NULL OR on_finish_url IS NOT NULL")
            return {str(n): (a, u) for n, a, u in cur.fetchall()}

    def set_hook_defaults(self, command: str | None, url: str | None) -> None:
        """The servers' ``on_finish`` (JSON argv) and ``on_finish_url``: what tasks whose
        queue has none of its own run when they end. A server writes its settings at
        start; servers sharing a store should agree (the last one started wins)."""
        with self._tx() as cur:
            for kind, value in (("command", command), ("url", url)):
                if value:
                    cur.execute("INSERT INTO hook_defaults (kind, value) VALUES (?, ?)"
                                " ON CONFLICT (kind) DO UPDATE SET value = excluded.value",
                                (kind, value))
                else:
                    cur.execute("DELETE FROM hook_defaults WHERE kind=?", (kind,))

    def next_hook_at(self) -> float | None:
        """When the next outbox row is due (None: the outbox is empty)."""
        with self._read_tx() as cur:
            cur.execute("SELECT MIN(next_at) FROM hook_outbox")
            row = cur.fetchone()
            return float(row[0]) if row and row[0] is not None else None

    def due_hook_commands(self, now: float, limit: int = 50) -> list[DueHook]:
        with self._read_tx() as cur:
            cur.execute(f"SELECT {_HOOK_COLUMNS} FROM hook_outbox WHERE next_at <= ?"
                        " AND kind = 'command' ORDER BY next_at, id LIMIT ?", (now, limit))
            return [DueHook(*row) for row in cur.fetchall()]

    def enqueue_hook(self, hook_id: int, spec: TaskSpec, *, by: str,
                     hook_for: tuple[int, int]) -> Task | None:
        """Turn outbox row ``hook_id`` into hook task ``spec`` (None: another server
        did it already). The reported task's events say so."""
        with self._tx() as cur:
            cur.execute("DELETE FROM hook_outbox WHERE id=? RETURNING id", (hook_id,))
            if cur.fetchone() is None:
                return None
            task = self._submit(cur, spec, by=by, hook_for=hook_for)
            self._note(cur, hook_for[0], by, f"hook: task {task.id} runs the finish hook"
                       f" of attempt {hook_for[1]}")
            return task

    def drop_hook(self, hook_id: int, *, by: str, note: str | None = None) -> None:
        """Forget outbox row ``hook_id`` (delivered, given up, or its task is gone)."""
        with self._tx() as cur:
            cur.execute("DELETE FROM hook_outbox WHERE id=? RETURNING task_id", (hook_id,))
            row = cur.fetchone()
            if row is not None and note is not None:
                self._note(cur, int(row[0]), by, note)

    def claim_webhooks(self, holder: str, now: float, hold: float,
                       limit: int = 20) -> list[DueHook]:
        """Due webhooks, held by ``holder`` for ``hold`` seconds (another server takes
        them over after that if this one dies). No write when none is due."""
        with self._read_tx() as cur:
            cur.execute("SELECT 1 FROM hook_outbox WHERE kind='url' AND next_at <= ? LIMIT 1",
                        (now,))
            if cur.fetchone() is None:
                return []
        with self._tx() as cur:
            cur.execute(
                "UPDATE hook_outbox SET holder=?, next_at=? WHERE id IN (SELECT id FROM"
                " hook_outbox WHERE kind='url' AND next_at <= ? ORDER BY next_at, id LIMIT ?)"
                f" AND next_at <= ? RETURNING {_HOOK_COLUMNS}",
                (holder, now + hold, now, limit, now))
            return sorted((DueHook(*row) for row in cur.fetchall()), key=lambda h: h.id)

    def webhook_failed(self, hook_id: int, holder: str, *, retry_at: float, error: str,
                       by: str, note: str) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE hook_outbox SET tries=tries+1, next_at=?, holder=NULL,"
                        " last_error=? WHERE id=? AND holder=? RETURNING task_id",
                        (retry_at, error[:1000], hook_id, holder))
            row = cur.fetchone()
            if row is not None:
                self._note(cur, int(row[0]), by, note)

    def hooks_of(self, task_id: int) -> list[Task]:
        """The hook tasks that reported on task ``task_id``, oldest first."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE hook_for=? ORDER BY id",
                        (task_id,))
            return [rows.task(row) for row in cur.fetchall()]

    def _note(self, cur: Cursor, task_id: int, by: str, detail: str) -> None:
        """An event that is not a transition: from and to are the task's status."""
        cur.execute("INSERT INTO events (task_id, at, from_status, to_status, by, attempt,"
                    " detail) SELECT id, ?, status, status, ?, epoch, ? FROM tasks WHERE id=?",
                    (time.time(), by, detail, task_id))
