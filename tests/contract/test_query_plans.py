"""The indexed filters of a task list never read the whole table: the query ``browse``
runs is explained (EXPLAIN QUERY PLAN on SQLite, whose plans do not depend on the
table's size without ANALYZE; EXPLAIN on PostgreSQL with sequential scans priced out,
so that a Seq Scan is left only where no index can serve). Metadata and text filters
have their indexes since schema 25 (``task_meta``; FTS5 / pg_trgm ``tasks_text``), alone
and beside another filter."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard import search
from taskyard.model import TaskSpec
from taskyard.store.sqlite import SQLiteStore
from taskyard.store.sqlserver import SqlServerStore

INDEXED: dict[str, dict[str, Any]] = {
    "status": {"status": ["failed"]},
    "statuses": {"status": ["running", "paused"]},
    "queue": {"queue": "reports"},
    "tenant": {"tenant": "default"},
    "name": {"name": "report"},
    "command": {"kind": "command"},
    "function": {"kind": "function"},
    "tracked": {"kind": "tracked"},
    "since": {"since": "1h"},
    "until": {"until": "1h"},
    "meta": {"meta": [("customer", "c3")]},
    "meta, status": {"meta": [("customer", "c3")], "status": ["failed"]},
    "two metas": {"meta": [("customer", "c3"), ("team", "ops")]},
    "text": {"text": "report"},
    "text, queue": {"text": "report", "queue": "reports"},
    "text, meta": {"text": "report", "meta": [("team", "ops")]},
}


def _plan(store: SqlServerStore, given: dict[str, Any], before: int | None) -> str:
    f = search.make_filter(**given)
    with store._read_tx() as cur:
        sql, params, _ = store.browse_sql(cur, f, before, 50)
        if isinstance(store, SQLiteStore):
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(str(row[-1]) for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(str(row[0]) for row in cur.fetchall())


def _full_scan(plan: str) -> bool:
    """A read of every row: SQLite's bare ``SCAN tasks`` (a SCAN of a partial index, or
    a SEARCH, reads only what it holds), PostgreSQL's ``Seq Scan``."""
    return any(line.strip() == "SCAN tasks" for line in plan.splitlines()) or "Seq Scan" in plan


@pytest.mark.parametrize("label", sorted(INDEXED))
def test_an_indexed_filter_reads_no_whole_table(store: SqlServerStore, label: str) -> None:
    for i in range(30):
        store.submit(TaskSpec(argv=("true",), name="report", queue="reports",
                              meta={"customer": f"c{i}", "team": "ops"}), by="t")
    if "text" in INDEXED[label] and not _has_text_index(store):
        pytest.skip("no pg_trgm in this database: --text reads every task")
    for before in (None, 10):
        plan = _plan(store, INDEXED[label], before)
        assert not _full_scan(plan), plan


def _has_text_index(store: SqlServerStore) -> bool:
    if isinstance(store, SQLiteStore):
        return True
    with store._read_tx() as cur:
        cur.execute("SELECT to_regclass('tasks_text') IS NOT NULL")
        return bool(cur.fetchone()[0])


def test_the_plan_test_sees_a_full_scan(store: SqlServerStore) -> None:
    """The check itself: a condition no index serves is seen reading the whole table."""
    with store._read_tx() as cur:
        if isinstance(store, SQLiteStore):
            cur.execute("EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE argv <> ?", ["x"])
            plan = "\n".join(str(row[-1]) for row in cur.fetchall())
        else:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN SELECT id FROM tasks WHERE argv <> ?", ["x"])
            plan = "\n".join(str(row[0]) for row in cur.fetchall())
    assert _full_scan(plan), plan


def _explain(store: SqlServerStore, sql: str, params: list[object]) -> str:
    with store._read_tx() as cur:
        if isinstance(store, SQLiteStore):
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(str(row[-1]) for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql.replace(" FOR UPDATE SKIP LOCKED", ""), params)
        return "\n".join(str(row[0]) for row in cur.fetchall())


@pytest.mark.parametrize("limited", ["none", "full queue, held mutex, taken ids"])
def test_the_claim_reads_its_candidates_off_an_index_in_claim_order(
        store: SqlServerStore, limited: str) -> None:
    """A claim costs the same with a thousand or a million tasks queued: its candidates
    are read off the ``tasks_status`` index in claim order (no full scan, no sort of
    every queued task), whatever the limits leave out."""
    from taskyard.store.admit import Usage

    for i in range(30):
        store.submit(TaskSpec(argv=("true",), priority=i % 3, mutex=f"m{i % 2}",
                              queue="q" if i % 2 else "default"), by="t")
    usage = Usage([], {}, {})
    if limited != "none":
        usage = Usage([("q", "default", "m1")], {"q": 1}, {})
    plan = _explain(store, *store.candidates_sql(usage, [1, 2] if limited != "none" else [], 8))
    # (the paused queues and disabled tenants, a few rows, may be read whole)
    scans = [line.strip() for line in plan.splitlines()]
    assert "SCAN tasks" not in scans and "Seq Scan on tasks" not in plan, plan
    assert "tasks_status" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_the_newest_queued_tasks_are_read_off_an_index(store: SqlServerStore) -> None:
    """``Yard.list(status="queued", limit=50)``: a page off the (status, id) index."""
    for _ in range(30):
        store.submit(TaskSpec(argv=("true",)), by="t")
    plan = _plan(store, {"status": ["queued"]}, None)
    assert not _full_scan(plan), plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_postgres_vacuums_the_queue_by_what_changed_not_by_its_size(
        store: SqlServerStore) -> None:
    """Claims leave dead index entries at the queue's head until a vacuum: on PostgreSQL
    the tables a claim reads are vacuumed after a fixed number of dead rows (schema 27),
    not after 20 % of the table (200,000 on a million-task store)."""
    if isinstance(store, SQLiteStore):
        pytest.skip("SQLite rewrites index entries in place: no dead entries to vacuum")
    with store._read_tx() as cur:
        cur.execute("SELECT relname, reloptions FROM pg_class WHERE relkind = 'r'"
                    " AND relnamespace = current_schema()::regnamespace"
                    " AND relname IN ('tasks', 'attempts') ORDER BY relname")
        found = {name: sorted(options or []) for name, options in cur.fetchall()}
    wanted = ["autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=5000"]
    assert found == {"attempts": wanted, "tasks": wanted}
