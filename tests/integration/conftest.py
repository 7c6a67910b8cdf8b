from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A postgresql:// URL (as users give it) whose tables live in a fresh schema."""
    from taskyard.testing import postgres_schema
    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    with postgres_schema(PG_DSN, "it") as url:
        yield url


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL databases on the test server (as two deployments that
    share nothing but the PostgreSQL server have); each is dropped afterwards."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    made: list[str] = []

    def make() -> str:
        name = f"taskyard_it_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return PG_DSN.rsplit("/", 1)[0] + "/" + name

    assert conninfo_to_dict(PG_DSN).get("dbname"), PG_DSN
    yield make
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for name in made:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
