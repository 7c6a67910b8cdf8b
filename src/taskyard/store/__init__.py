"""Stores. ``open_store`` picks the backend for a location."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

#: Locations with these prefixes are PostgreSQL connection URLs; anything else is a path.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@overload
def open_store(location: Path, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5, server: bool = False) -> SQLiteStore: ...
@overload
def open_store(location: Path | str, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5,
               server: bool = False) -> SQLiteStore | PostgresStore: ...


def open_store(location: Path | str, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5, server: bool = False) -> SQLiteStore | PostgresStore:
    """Open (creating and migrating if needed) the store at ``location``: a
    ``postgresql://`` (or ``postgres://``) URL, or else the path of a SQLite file.
    ``synchronous`` applies to SQLite only, and so does ``server``: a server's SQLite
    store checkpoints its WAL from a thread of its own, off the server's loop."""
    if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
        from .postgres import PostgresStore  # psycopg only for those who use it

        return PostgresStore(location, application_name=application_name,
                             hold_limit=hold_limit)
    return SQLiteStore(location, synchronous=synchronous, server=server)


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)


__all__ = ["PostgresStore", "SQLiteStore", "open_store"]
