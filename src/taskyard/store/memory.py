"""A complete store in this process's memory, for tests (``Yard.memory()``).

It is the SQLite store on a ``:memory:`` database: the same schema, migrations,
triggers, fences and queries as a store file, so it cannot drift from it, and
no file is made. An in-memory database lives in one connection, so every handle
on the same store (``reopen()``: what a second process would open) shares that
connection and its lock; their transactions take turns, whatever the thread.
The database goes when the last handle is closed.

There is no server socket to hint (``wake`` does nothing) and nothing to compact.
"""

from __future__ import annotations

import _thread
import sqlite3
from pathlib import Path

from ..errors import StoreError
from .sql import fault_budget
from .sqlite import BUSY_TIMEOUT_MS, SQLiteStore, WakeSocket

LOCATION = ":memory:"


class _Database:
    """The one connection of a memory store, with its lock and how many handles use it."""

    def __init__(self) -> None:
        self.connection = sqlite3.connect(LOCATION, isolation_level=None,
                                          timeout=BUSY_TIMEOUT_MS / 1000,
                                          check_same_thread=False)
        self.lock = _thread.RLock()
        self.handles = 0


class MemoryStore(SQLiteStore):
    """A store in memory. ``MemoryStore()`` is a new, empty one; ``store.reopen()`` is
    one more handle on the same data (closing it leaves the others open)."""

    def __init__(self, *, shared: MemoryStore | None = None) -> None:
        self.path = Path(LOCATION)
        self.location = LOCATION
        self.checkpointer = None
        self._database: _Database = _Database() if shared is None else shared._database
        self._db = self._database.connection
        self._lock = self._database.lock
        self._closed = False
        self._server = False
        self._lock_wait = BUSY_TIMEOUT_MS / 1000
        self._impatient = False
        self._fail_after = fault_budget()
        self._lose_every = fault_budget("store-lost-answer-every")
        self._identity = None
        with self._lock:
            self._database.handles += 1
            if shared is None:
                try:
                    self._migrate()
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot make a memory store: {exc}") from exc

    def reopen(self) -> MemoryStore:
        """Another handle on this store's data (as another connection to a file)."""
        if self._closed:
            raise StoreError("store :memory: was closed: its data is gone")
        return MemoryStore(shared=self)

    def gone(self) -> str | None:
        return None

    def wake(self, kind: bytes = b"w") -> None:
        """No server listens to a memory store: nothing to hint."""

    def wake_listener(self) -> WakeSocket | None:
        return None

    def compact(self, full: bool = False) -> str:
        return "a memory store has no file to give pages back to"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._database.handles -= 1
            if self._database.handles == 0:
                self._db.close()
