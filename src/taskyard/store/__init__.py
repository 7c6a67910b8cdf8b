"""Stores. ``open_store`` picks the backend for a location."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, overload

from ..errors import ConfigError

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .sqlite import SQLiteStore

#: Locations with these prefixes are PostgreSQL connection URLs; anything else is a path.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: The location of a store in memory (one per open_store: see store/memory.py).
MEMORY = ":memory:"
#: What to do when the PostgreSQL driver is missing (the words users are told).
POSTGRES_EXTRA = "pip install 'taskyard[postgres]'"


def is_postgres(location: Path | str) -> TypeGuard[str]:
    """Whether ``location`` is a PostgreSQL URL (anything else is a SQLite path)."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def postgres_store() -> type[PostgresStore]:
    """The PostgreSQL backend class, or a :class:`ConfigError` (a user error: exit 2)
    saying how to install its driver when psycopg is missing or cannot load (psycopg is
    only imported by those who use a PostgreSQL store)."""
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        if exc.name is not None and not exc.name.startswith("psycopg"):
            raise  # one of our own modules: a bug, not a missing driver
        cause = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(".:")
        raise ConfigError(f"a PostgreSQL store needs the postgres extra ({cause}):"
                          f" {POSTGRES_EXTRA}", field="store") from None
    return PostgresStore


def require_driver(location: Path | str) -> None:
    """Fail now, with what to install, if ``location`` is a store whose driver is
    missing (``server start`` checks before it daemonizes)."""
    if is_postgres(location):
        postgres_store()


@overload
def open_store(location: Path, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5, server: bool = False,
               pool: bool = True) -> SQLiteStore: ...
@overload
def open_store(location: Path | str, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5, server: bool = False,
               pool: bool = True) -> SQLiteStore | PostgresStore: ...


def open_store(location: Path | str, *, synchronous: str = "normal",
               application_name: str = "taskyard",
               hold_limit: float = 2.5, server: bool = False,
               pool: bool = True) -> SQLiteStore | PostgresStore:
    """Open (creating and migrating if needed) the store at ``location``: a
    ``postgresql://`` (or ``postgres://``) URL, ``:memory:`` (a new, empty store in this
    process's memory), or else the path of a SQLite file.
    ``synchronous`` applies to SQLite only, and so does ``server``: a server's SQLite
    store checkpoints its WAL from a thread of its own, off the server's loop.
    ``pool=False`` (PostgreSQL): one connection, for a one-shot command in one thread."""
    if is_postgres(location):
        return postgres_store()(location, application_name=application_name,
                                hold_limit=hold_limit, pool=pool)
    if str(location) == MEMORY:
        from .memory import MemoryStore

        return MemoryStore()
    from .sqlite import SQLiteStore  # not imported by a PostgreSQL client (its CLI run)

    return SQLiteStore(location, synchronous=synchronous, server=server)


def __getattr__(name: str) -> Any:
    """``SQLiteStore`` and ``PostgresStore`` on first use (each imports its driver)."""
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)


__all__ = ["PostgresStore", "SQLiteStore", "open_store", "postgres_store", "require_driver"]
