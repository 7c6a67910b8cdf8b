"""Stores. ``open_store`` picks the backend for a location."""

from __future__ import annotations

from pathlib import Path

from .sqlite import SQLiteStore


def open_store(path: Path | str, *, synchronous: str = "normal") -> SQLiteStore:
    """Open (creating and migrating if needed) the embedded store at ``path``."""
    return SQLiteStore(path, synchronous=synchronous)


__all__ = ["SQLiteStore", "open_store"]
