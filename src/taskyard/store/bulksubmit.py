"""Bulk submit: many tasks in one transaction, written with one multi-row INSERT per
500 rows (mixin).

The ids are taken before the rows are written (SQLite: past ``sqlite_sequence``'s
under the write lock; PostgreSQL: ``nextval`` of the identity's sequence), so they
follow the specs' order and no row needs a ``RETURNING``: the tasks returned are made
from the rows written (reading 20,000 rows back cost a third of the time). A spec with a ``unique`` key is written alone, in its turn, as
``submit`` writes it (it may answer an existing task, or one made earlier in the same
call). Tenants and dependencies are each looked up once for the whole call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import lifecycle
from ..errors import NotFound, UserError
from ..lifecycle import Status, Verb
from ..model import Progress, Task, TaskSpec
from .sql import INSERT_COLUMNS, INSERT_MARKS, Cursor, SqlStoreBase, insert_values

#: rows per INSERT statement: 36 placeholders a row stay under SQLite's 32,766
ROWS_PER_INSERT = 500


class BulkSubmitStore(SqlStoreBase):
    #: one INSERT of many rows (SQLite); else one row's INSERT sent for each row with
    #: executemany (psycopg parses a statement of 18,000 placeholders in Python, uncached,
    #: which cost more than the rows; its executemany pipelines the rows, parsed once)
    MULTI_ROW_INSERT = True
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

    def check_references(self, specs: Sequence[TaskSpec]) -> None:
        """Every tenant and ``--after`` task the specs name exists (before a batch of
        several chunks writes its first): an error names the spec's index."""
        with self._read_tx() as cur:
            seen = {"default"}
            for index, spec in enumerate(specs):
                if spec.tenant not in seen:
                    seen.add(spec.tenant)
                    _at(index, self._require_tenant, cur, spec.tenant)
            self._succeeded(cur, specs)

    def _submit_many(self, cur: Cursor, specs: Sequence[TaskSpec], by: str) -> list[Task]:
        now = time.time()
        seen = {"default"}
        for index, spec in enumerate(specs):
            if spec.tenant not in seen:
                seen.add(spec.tenant)
                _at(index, self._require_tenant, cur, spec.tenant)
        done = self._succeeded(cur, specs)
        tasks: list[Task] = []
        plain: list[TaskSpec] = []
        for spec in specs:
            if spec.unique is None:
                plain.append(spec)
                continue
            tasks += self._insert_plain(cur, plain, by, now, done)
            plain = []
            tasks.append(self._submit(cur, spec, by=by))
        tasks += self._insert_plain(cur, plain, by, now, done)
        return tasks

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
                      done: set[int]) -> list[Task]:
        """Insert specs without a unique key; their tasks, in order."""
        if not specs:
            return []
        cur.execute(self.ALLOCATE_IDS, (len(specs),))
        ids = [int(row[0]) for row in cur.fetchall()]
        submitted, deferred = lifecycle.target(Verb.SUBMIT), lifecycle.target(Verb.DEFER)
        tasks: list[Task] = []
        for start in range(0, len(specs), ROWS_PER_INSERT):
            part = specs[start:start + ROWS_PER_INSERT]
            values: list[object] = []
            for task_id, spec in zip(ids[start:], part, strict=False):
                waits = (spec.run_at is not None and spec.run_at > now) or any(
                    a not in done for a in spec.after)
                row = insert_values(spec, deferred if waits else submitted, by, now)
                values.append(task_id)
                values += row
                tasks.append(_task(task_id, spec, row, now))
            self._insert_rows(cur, values, len(part))
        self._declare_rates(cur, specs)
        deps = [(task_id, after) for task_id, spec in zip(ids, specs, strict=True)
                for after in sorted(set(spec.after))]
        if deps:
            cur.executemany("INSERT INTO deps (task_id, after_id) VALUES (?, ?)", deps)
        return tasks

    def _declare_rates(self, cur: Cursor, specs: Sequence[TaskSpec]) -> None:
        """The longest period of each rate key given (as a single submit declares it)."""
        from ..rates import task_key
        from .rates import declare

        longest: dict[str, Any] = {}
        for spec in specs:
            given = spec.rate_limit
            if given is not None and (given.key not in longest
                                      or given.rate.period > longest[given.key].period):
                longest[given.key] = given.rate
        for key, rate in sorted(longest.items()):
            declare(cur, task_key(key), rate)

    def _insert_rows(self, cur: Cursor, values: list[object], count: int) -> None:
        """Insert ``count`` rows of (id, INSERT_COLUMNS), their values one after another."""
        sql = f"INSERT INTO tasks (id, {INSERT_COLUMNS}) VALUES "
        marks = f"(?,{INSERT_MARKS})"
        if self.MULTI_ROW_INSERT:
            cur.execute(sql + ",".join([marks] * count), values)
            return
        width = len(values) // count
        cur.executemany(sql + marks, [values[i:i + width] for i in range(0, len(values), width)])


def _task(task_id: int, spec: TaskSpec, row: tuple[Any, ...], now: float) -> Task:
    """The task a row of :func:`insert_values` makes, as reading it back would give it
    (the contract tests compare the two); JSON fields are read from the stored text."""
    return Task(
        id=task_id, name=spec.name, queue=spec.queue, status=Status(row[2]), reason=None,
        exit_code=None, signal=None, error=None, argv=tuple(spec.argv), env=dict(spec.env),
        cwd=spec.cwd, meta=json.loads(row[6]), stdin_open=spec.stdin_open,
        timeout=spec.timeout, priority=spec.priority, run_at=spec.run_at,
        retries=spec.retries, retried=0, unique=None, mutex=spec.mutex, tenant=spec.tenant,
        schedule=None, fire_at=None, function=spec.function,
        kwargs=json.loads(row[22]) if row[22] is not None else None, result=None, config={},
        steps=None, progress=Progress(), attempt=0, pid=None, created_at=now,
        started_at=None, finished_at=None, fds=tuple(sorted(spec.fds)),
        on_finish=tuple(spec.on_finish) if spec.on_finish is not None else None,
        hook_for=None, keep=bool(spec.keep), limits=spec.limits, rate_limit=spec.rate_limit,
        output_head=spec.output_head, output_tail=spec.output_tail)


def _at(index: int, check: Callable[..., object], *args: object) -> None:
    """Run ``check``; its UserError's field is prefixed with the spec's index."""
    try:
        check(*args)
    except UserError as exc:
        raise type(exc)(str(exc), field=f"{index}.{exc.field}") from None
