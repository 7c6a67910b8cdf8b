from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL DSN whose tables live in a fresh schema, dropped afterwards."""
    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    import psycopg

    schema = f"it_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        # a postgresql:// URL, as users give it (a key=value string would be read as a path)
        from urllib.parse import quote

        yield f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}options={quote(f'-c search_path={schema}')}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
