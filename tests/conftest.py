from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stray TASKYARD_* variables (from a task running the suite, say) must not leak in."""
    for key in list(os.environ):
        if key.startswith("TASKYARD_"):
            monkeypatch.delenv(key)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    yield path
