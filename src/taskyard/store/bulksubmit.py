"""Bulk submit: many tasks in one transaction, written with one multi-row INSERT per
500 rows (mixin).

The ids are taken before the rows are written (SQLite: past ``sqlite_sequence``'s
under the write lock; PostgreSQL: ``nextval`` of the identity's sequence), so they
follow the specs' order and no row needs a ``RETURNING``; the tasks are read back by
id at the end. A spec with a ``unique`` key is written alone, in its turn, as
``submit`` writes it (it may answer an existing task, or one made earlier in the same
call). Tenants and dependencies are each looked up once for the whole call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .. import lifecycle
from ..errors import NotFound, UserError
from ..lifecycle import Status, Verb
from ..model import Task, TaskSpec
from . import rows
from .sql import INSERT_COLUMNS, INSERT_MARKS, Cursor, SqlStoreBase, insert_values

#: rows per INSERT statement: 36 placeholders a row stay under SQLite's 32,766
ROWS_PER_INSERT = 500


class BulkSubmitStore(SqlStoreBase):
    #: ids for ``?`` new tasks, in order (SQLite: an AUTOINCREMENT table's next ids)
    ALLOCATE_IDS = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                    " SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0)"
                    " + i FROM n ORDER BY i")

    def submit_many(self, specs: Sequence[TaskSpec], *, by: str) -> list[Task]:
        """Submit ``specs`` (already validated) in one transaction: all or none."""
        if not specs:
            return []
        with self._tx() as cur:
            return self._submit_many(cur, specs, by)

    def _submit_many(self, cur: Cursor, specs: Sequence[TaskSpec], by: str) -> list[Task]:
        now = time.time()
        seen = {"default"}
        for index, spec in enumerate(specs):
            if spec.tenant not in seen:
                seen.add(spec.tenant)
                _at(index, self._require_tenant, cur, spec.tenant)
        done = self._succeeded(cur, specs)
        ids: list[int] = []
        plain: list[TaskSpec] = []
        for spec in specs:
            if spec.unique is None:
                plain.append(spec)
                continue
            ids += self._insert_plain(cur, plain, by, now, done)
            plain = []
            ids.append(self._submit(cur, spec, by=by).id)
        ids += self._insert_plain(cur, plain, by, now, done)
        return self._read_back(cur, ids)

    def _succeeded(self, cur: Cursor, specs: Sequence[TaskSpec]) -> set[int]:
        """Which tasks the specs wait for have succeeded; one that is no task is an
        error (its field: the spec's index, then ``after``)."""
        found: dict[int, str] = {}
        wanted = sorted({a for s in specs for a in s.after})
        for start in range(0, len(wanted), ROWS_PER_INSERT):
            part = wanted[start:start + ROWS_PER_INSERT]
            cur.execute(f"SELECT id, status FROM tasks WHERE id IN ({','.join('?' * len(part))})",
                        part)
            found.update((row[0], row[1]) for row in cur.fetchall())
        for index, spec in enumerate(specs):
            missing = [i for i in spec.after if i not in found]
            if missing:
                raise NotFound(f"after: no task {missing[0]}", field=f"{index}.after")
        return {i for i, status in found.items() if status == Status.SUCCEEDED.value}

    def _insert_plain(self, cur: Cursor, specs: list[TaskSpec], by: str, now: float,
                      done: set[int]) -> list[int]:
        """Insert specs without a unique key; their ids, in order."""
        if not specs:
            return []
        cur.execute(self.ALLOCATE_IDS, (len(specs),))
        ids = [int(row[0]) for row in cur.fetchall()]
        submitted, deferred = lifecycle.target(Verb.SUBMIT), lifecycle.target(Verb.DEFER)
        for start in range(0, len(specs), ROWS_PER_INSERT):
            part = specs[start:start + ROWS_PER_INSERT]
            values: list[object] = []
            for task_id, spec in zip(ids[start:], part, strict=False):
                waits = (spec.run_at is not None and spec.run_at > now) or any(
                    a not in done for a in spec.after)
                values.append(task_id)
                values += insert_values(spec, deferred if waits else submitted, by, now)
            row = f"(?,{INSERT_MARKS})"
            cur.execute(f"INSERT INTO tasks (id, {INSERT_COLUMNS}) VALUES "
                        + ",".join([row] * len(part)), values)
        deps = [(task_id, after) for task_id, spec in zip(ids, specs, strict=True)
                for after in sorted(set(spec.after))]
        if deps:
            cur.executemany("INSERT INTO deps (task_id, after_id) VALUES (?, ?)", deps)
        return ids

    def _read_back(self, cur: Cursor, ids: list[int]) -> list[Task]:
        """The tasks of ``ids``, in that order (a unique key's answer may repeat)."""
        found: dict[int, Task] = {}
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), ROWS_PER_INSERT * 10):
            part = ordered[start:start + ROWS_PER_INSERT * 10]
            cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE id BETWEEN ? AND ?",
                        (part[0], part[-1]))
            wanted = set(part)
            found.update((t.id, t) for t in map(rows.task, cur.fetchall()) if t.id in wanted)
        return [found[i] for i in ids]


def _at(index: int, check: Callable[..., object], *args: object) -> None:
    """Run ``check``; its UserError's field is prefixed with the spec's index."""
    try:
        check(*args)
    except UserError as exc:
        raise type(exc)(str(exc), field=f"{index}.{exc.field}") from None
