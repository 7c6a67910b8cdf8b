"""One suite, every store. A new backend adds itself to ``BACKENDS``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskyard.store.sqlite import SQLiteStore


def _sqlite(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "contract.db")


BACKENDS: dict[str, Callable[[Path], SQLiteStore]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()


@pytest.fixture
def other(store: SQLiteStore, tmp_path: Path) -> Iterator[SQLiteStore]:
    """A second connection to the same store (another process, in effect)."""
    s = type(store)(store.path)
    yield s
    s.close()
