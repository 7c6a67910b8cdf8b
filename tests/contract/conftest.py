"""One suite, every store. A new backend adds itself to ``BACKENDS`` (a fresh, empty
store, given a temp directory it may use) and ``REOPEN`` (a second connection to that
store). PostgreSQL stores live in a schema of their own, dropped when they close."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskyard.store.sqlite import SQLiteStore
from taskyard.store.sqlserver import SqlServerStore

PG_DSN = os.environ.get("TASKYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _sqlite(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "contract.db")


def _reopen_sqlite(store: SqlServerStore) -> SqlServerStore:
    assert isinstance(store, SQLiteStore)
    return SQLiteStore(store.path)


def _memory(tmp_path: Path) -> SqlServerStore:
    from taskyard.store.memory import MemoryStore

    return MemoryStore()


def _reopen_memory(store: SqlServerStore) -> SqlServerStore:
    from taskyard.store.memory import MemoryStore

    assert isinstance(store, MemoryStore)
    return store.reopen()


_pg_error: str | None = None  #: why PostgreSQL did not answer ("" once it did)


def _require_postgres() -> None:
    """Skip when no PostgreSQL answers, but fail on CI: there it must be set up."""
    global _pg_error
    if _pg_error is None:
        import psycopg

        try:
            psycopg.connect(PG_DSN, connect_timeout=3).close()
            _pg_error = ""
        except psycopg.OperationalError as exc:
            _pg_error = str(exc)
    if _pg_error:
        message = f"no PostgreSQL at {PG_DSN} (set TASKYARD_TEST_PG): {_pg_error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _scratch_schema_dsn(schema: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(PG_DSN, options=f"-c search_path={schema}")


def _postgres(tmp_path: Path) -> SqlServerStore:
    """A store in a new, uniquely named schema, dropped again when the store closes."""
    _require_postgres()
    import psycopg

    from taskyard.store.postgres import PostgresStore

    class ScratchPostgresStore(PostgresStore):
        def close(self) -> None:
            super().close()
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    schema = f"contract_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return ScratchPostgresStore(_scratch_schema_dsn(schema))


def _reopen_postgres(store: SqlServerStore) -> SqlServerStore:
    from taskyard.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    return PostgresStore(store.dsn)


BACKENDS: dict[str, Callable[[Path], SqlServerStore]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "memory": _memory,
}
REOPEN: dict[str, Callable[[SqlServerStore], SqlServerStore]] = {
    "sqlite": _reopen_sqlite,
    "postgres": _reopen_postgres,
    "memory": _reopen_memory,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[SqlServerStore]:
    s = BACKENDS[backend](tmp_path)
    yield s
    s.close()


@pytest.fixture
def other(backend: str, store: SqlServerStore) -> Iterator[SqlServerStore]:
    """A second connection to the same store (another process, in effect)."""
    s = REOPEN[backend](store)
    yield s
    s.close()
