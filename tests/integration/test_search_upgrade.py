"""Schema 25 indexes the metadata and text of the tasks a store already holds: a store
made at schema 24 with tasks in it, opened by this release, finds them by ``--meta``
and ``--text`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from taskyard import search
from taskyard.model import TaskSpec
from taskyard.store.sqlite import SQLiteStore
from taskyard.store.sqlserver import SqlServerStore

SPECS = [TaskSpec(argv=("make", "report"), name="nightly", meta={"team": "ops", "n": {"x": 1}}),
         TaskSpec(argv=("true",), name="other", meta={"team": "dev"})]


def _found(store: SqlServerStore, **given: object) -> list[str | None]:
    meta = search.meta_pairs(given.pop("meta", None))  # type: ignore[arg-type]
    f = search.make_filter(meta=meta, **given)  # type: ignore[arg-type]
    return [t.name for t in store.browse(f).items]


def _check(store: SqlServerStore) -> None:
    assert _found(store, meta={"team": "ops"}) == ["nightly"]
    assert _found(store, meta={"n.x": 1}) == ["nightly"]
    assert _found(store, text="report") == ["nightly"]
    assert _found(store, text="OTHER") == ["other"]


def test_a_schema_24_sqlite_store_is_indexed_on_upgrade(tmp_path: Path) -> None:
    from taskyard.store.sqlite import _statements, migrations

    path = tmp_path / "taskyard.db"
    db = sqlite3.connect(path, isolation_level=None)
    for version, script in migrations():
        if version <= 24:
            for statement in _statements(script):
                db.execute(statement)
    db.execute("PRAGMA user_version=24")
    for spec in SPECS:
        db.execute("INSERT INTO tasks (status, argv, env, meta, name, created_at, changed_by,"
                   " changed_at) VALUES ('queued', ?, '{}', ?, ?, 1.0, 'old', 1.0)",
                   (_json(list(spec.argv)), _json(spec.meta), spec.name))
    db.close()
    store = SQLiteStore(path)
    try:
        _check(store)
    finally:
        store.close()


def test_a_schema_24_postgres_store_is_indexed_on_upgrade(pg_dsn: str) -> None:
    import psycopg

    from taskyard.store.postgres import PostgresStore, migrations

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE taskyard_schema (one boolean PRIMARY KEY DEFAULT true"
                     " CHECK (one), version integer NOT NULL)")
        conn.execute("INSERT INTO taskyard_schema (version) VALUES (24)")
        for version, script in migrations():
            if version <= 24:
                conn.execute(script.encode())
        for spec in SPECS:
            conn.execute("INSERT INTO tasks (status, argv, env, meta, name, created_at,"
                         " changed_by, changed_at) VALUES ('queued', %s, '{}', %s, %s, 1.0,"
                         " 'old', 1.0)", (_json(list(spec.argv)), _json(spec.meta), spec.name))
    store = PostgresStore(pg_dsn)
    try:
        _check(store)
    finally:
        store.close()


def _json(value: object) -> str:
    import json

    return json.dumps(value)
