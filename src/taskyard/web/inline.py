"""Store work on the web process's event loop, when the store is a local SQLite file.

A trip through a worker thread costs about a tenth of a millisecond of CPU and more
of latency: a third of a submit over HTTP. Reads of a local file cost microseconds
and never wait for a writer (WAL), so token and session lookups and the live
streams' looks run on the loop, on a connection of their own (never waiting behind
another request's query). A write runs there too when SQLite's write lock is free at
once; when it is not (a server committing, say), the same write goes to a worker
thread on the shared connection, which waits for the lock as clients do. That
connection's commits never checkpoint (a checkpoint copies and fsyncs megabytes): a
worker thread checkpoints after every CHECKPOINT_EVERY writes made here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import StoreError, StoreUnavailable
from ..store.sqlite import SQLiteStore
from ..store.sqlserver import SqlServerStore

T = TypeVar("T")
CHECKPOINT_EVERY = 200

log = logging.getLogger("taskyard.web")


class Inline:
    def __init__(self, store: SQLiteStore, shared: SQLiteStore) -> None:
        self.store = store  #: used on the event loop's thread only
        self.shared = shared
        self.writes = 0

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """``work(store, *args)`` on the loop if the write lock is free at once, else in a
        worker thread with the shared store."""
        try:
            result = work(self.store, *args)
        except StoreUnavailable:  # the lock is taken: wait for it elsewhere
            return await asyncio.get_running_loop().run_in_executor(
                None, work, self.shared, *args)
        self.writes += 1
        if self.writes % CHECKPOINT_EVERY == 0:
            asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        return result

    def _checkpoint(self) -> None:
        try:
            self.shared.checkpoint_wal()
        except StoreError as exc:
            log.warning("checkpoint after the web process's writes failed: %s", exc)


class PerThread:
    """A SQLite store for each worker thread of the web process: a request waiting for
    the write lock (a server committing, another program's transaction) holds up no
    other request, as it did when they all took turns on one connection (/health
    waited 30 s behind a submit waiting for a lock another program held)."""

    def __init__(self, first: SQLiteStore, synchronous: str) -> None:
        self.path, self.synchronous = first.path, synchronous
        self.location = first.location
        self._local = threading.local()
        self._local.store = first
        self._opened = [first]
        self._guard = threading.Lock()

    def mine(self) -> SQLiteStore:
        store: SQLiteStore | None = getattr(self._local, "store", None)
        if store is None:
            store = SQLiteStore(self.path, synchronous=self.synchronous)
            self._local.store = store
            with self._guard:
                self._opened.append(store)
        return store

    def __getattr__(self, name: str) -> Any:
        if callable(getattr(SQLiteStore, name, None)):
            # resolved when called, in the calling thread: `run_in_threadpool(store.get,
            # ...)` takes the method on the event loop and calls it in a worker
            def call(*args: Any, **kwargs: Any) -> Any:
                return getattr(self.mine(), name)(*args, **kwargs)

            return call
        return getattr(self.mine(), name)

    def close(self) -> None:
        with self._guard:
            for store in self._opened:
                store.close()


def per_thread(store: SqlServerStore, synchronous: str) -> tuple[SqlServerStore, Inline | None]:
    """For a local SQLite store: a store per worker thread and an Inline for the event
    loop; for PostgreSQL (a pool of connections already; reads and writes go over the
    network, so they stay in worker threads): the store itself and None."""
    if not isinstance(store, SQLiteStore):
        return store, None
    threads: Any = PerThread(store, synchronous)
    inline = Inline(SQLiteStore(store.path, synchronous=synchronous, impatient=True), threads)
    return threads, inline
