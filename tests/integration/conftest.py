from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A postgresql:// URL (as users give it) whose tables live in a fresh schema."""
    from taskyard.testing import postgres_schema
    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    with postgres_schema(PG_DSN, "it") as url:
        yield url
