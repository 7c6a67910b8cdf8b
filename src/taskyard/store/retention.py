"""Retention as the store does it: which finished tasks a rule lets go, and removing
them with everything that is theirs, a small batch per transaction. Mixed into the
SQL stores.

A task is never pruned while it is not finished, while it was submitted with
``--keep``, or while a task still waits for it (``--after``). Each batch checks that
again inside its own transaction, so a restart or a new dependant between the look
and the removal keeps the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType
from typing import NamedTuple

from ..lifecycle import Status
from .sql import OWNED, Cursor, SqlStoreBase, in_list

FINISHED = "('succeeded', 'failed', 'stopped')"  #: the partial index tasks_finished's
_PRUNABLE = (f"status IN {FINISHED} AND keep = 0 AND NOT EXISTS (SELECT 1 FROM deps d"
             " JOIN tasks w ON w.id = d.task_id WHERE d.after_id = tasks.id"
             " AND w.status = 'scheduled')")


class Pruned(NamedTuple):
    id: int
    queue: str
    status: str


class RetentionStore(SqlStoreBase):
    """Retention settings of queues, the candidates of a rule, their removal."""

    COUNTS = "task_counts"

    def set_queue_retention(self, name: str, *, retain: float | None | EllipsisType = ...,
                            retain_count: int | None | EllipsisType = ...) -> None:
        """A queue's own retention (None: the server's again; ``...``: unchanged)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                        (name,))
            if not isinstance(retain, EllipsisType):
                cur.execute("UPDATE queues SET retain=? WHERE name=?", (retain, name))
            if not isinstance(retain_count, EllipsisType):
                cur.execute("UPDATE queues SET retain_count=? WHERE name=?",
                            (retain_count, name))

    def queue_retention(self) -> dict[str, tuple[float | None, int | None]]:
        """Queues with retention of their own: name -> (seconds, count)."""
        with self._read_tx() as cur:
            cur.execute("SELECT name, retain, retain_count FROM queues"
                        " WHERE retain IS NOT NULL OR retain_count IS NOT NULL")
            return {str(n): (r, c) for n, r, c in cur.fetchall()}

    def finished_queues(self) -> list[str]:
        """Queues that have finished tasks (from the kept counts: no scan)."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT DISTINCT queue FROM {self.COUNTS}"
                        f" WHERE status IN {FINISHED} AND n > 0 ORDER BY queue")
            return [str(row[0]) for row in cur.fetchall()]

    def prune_candidates(self, queue: str, *, before: float | None = None,
                         beyond: int | None = None, statuses: Sequence[str] = (),
                         limit: int | None = None) -> list[int]:
        """Finished tasks of ``queue`` that may go, oldest first: finished before
        ``before`` (unix time), or not among the newest ``beyond`` finished ones."""
        where: list[str] = ["queue = ?", _PRUNABLE]
        params: list[object] = [queue]
        if statuses:
            where.append(f"status IN {in_list(frozenset(Status(s) for s in statuses))}")
        if before is not None:
            where.append("finished_at < ?")
            params.append(before)
        if beyond is not None:
            where.append(f"(finished_at, id) <= (SELECT finished_at, id FROM tasks WHERE"
                         f" queue = ? AND status IN {FINISHED} ORDER BY finished_at DESC,"
                         " id DESC LIMIT 1 OFFSET ?)")
            params += [queue, beyond]
        sql = f"SELECT id FROM tasks WHERE {' AND '.join(where)} ORDER BY finished_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read_tx() as cur:
            cur.execute(sql, params)
            return [int(row[0]) for row in cur.fetchall()]

    def compact(self, full: bool = False) -> str:
        """Give freed space back (each store its own way); what it did, in words."""
        raise NotImplementedError

    def purge(self, ids: Sequence[int]) -> list[Pruned]:
        """Remove those of ``ids`` that may still go, with all that is theirs."""
        if not ids:
            return []
        with self._tx() as cur:
            cur.execute(f"SELECT id, queue, status FROM tasks WHERE id IN ({_marks(ids)})"
                        f" AND {_PRUNABLE}", list(ids))
            gone = [Pruned(int(i), str(q), str(s)) for i, q, s in cur.fetchall()]
            if gone:
                self._remove(cur, [p.id for p in gone])
            return gone

    def _remove(self, cur: Cursor, ids: list[int]) -> None:
        marks = _marks(ids)
        for table in OWNED:
            cur.execute(f"DELETE FROM {table} WHERE task_id IN ({marks})", ids)
        cur.execute(f"DELETE FROM deps WHERE task_id IN ({marks})", ids)
        cur.execute(f"DELETE FROM tasks WHERE id IN ({marks})", ids)


def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))
