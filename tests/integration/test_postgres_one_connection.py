"""``taskyard ls`` on PostgreSQL opens one connection and no pool (``pool=False``): the
store works through the connection that checked the schema, with the session limits
given at connect."""

from __future__ import annotations

import uuid

from taskyard import search
from taskyard.model import TaskSpec
from taskyard.store.postgres import PostgresStore


def test_one_connection_does_it_all(pg_dsn: str) -> None:
    import psycopg

    name = f"one-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(pg_dsn, application_name=name, pool=False, hold_limit=1.5)
    try:
        task = store.submit(TaskSpec(argv=("true",), name="x", meta={"k": "v"}), by="t")
        f = search.make_filter(meta=[("k", "v")])
        assert [t.id for t in store.browse(f).items] == [task.id]
        assert sum(store.count_tasks(f)[0].values()) == 1
        with store._read_tx() as cur:
            cur.execute("SELECT current_setting('lock_timeout'),"
                        " current_setting('idle_in_transaction_session_timeout')")
            assert tuple(cur.fetchone()) == ("1500ms", "1500ms")
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT COUNT(*) FROM pg_stat_activity"
                               " WHERE application_name = %s", (name,)).fetchone()
        assert row is not None and row[0] == 1
    finally:
        store.close()
