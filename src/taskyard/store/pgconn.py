"""PostgreSQL sessions: the cursor taking the shared ``?`` SQL, and the server tick's
connection, whose statements go in batches of one message each (``PgTick``)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import StoreUnavailable, TaskyardError
from .sql import Cursor


@functools.lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s``, once per statement string.

    The shared SQL must hold no literal ``?`` (it would become a placeholder) and
    no literal ``%`` (psycopg would read it as one); a ``%`` is refused here.
    """
    if "%" in sql:
        raise TaskyardError(f"literal % in shared SQL: {sql!r}")
    return sql.replace("?", "%s")


@functools.lru_cache(maxsize=64)
def numbered(sql: str) -> str:
    """``?`` placeholders to ``$1``, ``$2``... (a PREPAREd statement's)."""
    parts = placeholders(sql).split("%s")
    return "".join(part + (f"${n}" if n < len(parts) else "")
                   for n, part in enumerate(parts, start=1))


class PgCursor:
    """A psycopg cursor taking the shared ``?`` SQL; rows are tuples, as on SQLite."""

    __slots__ = ("_cur",)

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        self._cur.execute(placeholders(sql), params)
        return self

    def executemany(self, sql: str, params: Any) -> PgCursor:
        self._cur.executemany(placeholders(sql), params)
        return self

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


Statement = tuple[str, Sequence[Any]]  #: a prepared statement's name, its parameters


class PgTick:
    """A write transaction whose statements go to the server in batches: each batch is
    one message (the simple query protocol: ``EXECUTE`` of statements prepared once per
    connection, their parameters bound by psycopg on this side), answered at once. A
    process frozen at any point holds its locks no longer than
    ``idle_in_transaction_session_timeout``: a message is whole or not sent, and the
    session is idle in a transaction, with its time limit running, between two (which
    psycopg's pipeline mode, sending each statement as it comes and a Sync only at the
    end, would not give). ``cursor`` is for statements one at a time in between."""

    def __init__(self, conn: psycopg.Connection[Any], prepared: dict[str, str],
                 done: set[str]) -> None:
        self._conn = conn
        self._batch = psycopg.ClientCursor(conn)
        self._prepared = prepared  #: name -> SQL of the statements ``run`` takes
        self._done = done  #: the names prepared on this connection
        self.begun = False
        self.committed = False

    def cursor(self) -> Cursor:
        if not self.begun:
            self._conn.execute(b"BEGIN")
            self.begun = True
        return PgCursor(self._conn.cursor())

    def run(self, statements: Sequence[Statement]) -> list[list[Any]]:
        """EXECUTE the named statements as one message (COMMIT may end them); the rows
        of each (empty for a command)."""
        self._prepare()
        parts = [name if name == "COMMIT" else
                 f"EXECUTE {name}({','.join(['%s'] * len(ps))})" if ps else f"EXECUTE {name}"
                 for name, ps in statements]
        params = [p for _, ps in statements for p in ps]
        if not self.begun:
            self.begun = True
            return self._results("BEGIN;" + ";".join(parts), params)[1:]
        return self._results(";".join(parts), params)

    def commit(self, statements: Sequence[Statement] = ()) -> list[list[Any]]:
        """EXECUTE ``statements`` and COMMIT, as one message."""
        rows = self.run([*statements, ("COMMIT", ())])[:-1]
        self.committed = True
        return rows

    def _prepare(self) -> None:
        """PREPARE the statements once on this connection, outside a transaction
        (DEALLOCATE ALL first: a half-done earlier try is no error)."""
        if self.begun or set(self._prepared) <= self._done:
            return
        self._conn.execute(("DEALLOCATE ALL;" + ";".join(
            f"PREPARE {name} AS {numbered(sql)}" for name, sql in self._prepared.items()
        )).encode())
        self._done.update(self._prepared)

    def _results(self, sql: str, params: list[Any]) -> list[list[Any]]:
        cur = self._batch
        cur.execute(sql, params)
        found: list[list[Any]] = []
        while True:
            found.append(cur.fetchall() if cur.description is not None else [])
            if not cur.nextset():
                return found


class TickSession:
    """The connection a server's ticks run on, made at the first tick and again after
    one broke. psycopg prepares nothing on it: it deallocates every prepared statement
    after a ROLLBACK when it has prepared some, and the tick's must stay."""

    def __init__(self, dsn: str, application_name: str, location: str) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self._location = location
        self._conn: psycopg.Connection[Any] | None = None
        self._done: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, prepared: dict[str, str]) -> Iterator[PgTick]:
        """A ``PgTick``, committed on leaving unless its user committed; rolled back
        on a failure (a connection that cannot be is dropped)."""
        with self._lock:
            conn = self._connect()
            tick = PgTick(conn, prepared, self._done)
            try:
                yield tick
                if tick.begun and not tick.committed:
                    tick.commit()
            except BaseException:
                rollback(conn)
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self.close()
                raise

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self.close()
        if self._conn is None:
            self._conn = psycopg.connect(self._dsn, autocommit=True, prepare_threshold=None,
                                         application_name=self._application_name,
                                         connect_timeout=5)
            self._done = set()
        if self._conn.closed:
            raise StoreUnavailable(f"store {self._location}: connection lost")
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def rollback(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute(b"ROLLBACK")
    except psycopg.Error:
        pass  # a broken connection: the pool discards it
