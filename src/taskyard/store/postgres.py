"""The shared store: PostgreSQL through psycopg 3 and a connection pool.

The statements are the ones in ``sql.py`` and ``sqlserver.py``; this module
supplies the connection, the transactions and the dialect hooks. Writes run in
READ COMMITTED: every status change is one guarded ``UPDATE`` (re-checked on
the newest row version after a lock wait), read-then-write paths lock the row
(``ROW_LOCK``), and a claim skips rows another transaction is claiming
(``CLAIM_LOCK``). Reads run in REPEATABLE READ READ ONLY, so a read of several
tables (``read_output``) sees one snapshot, as a SQLite read transaction does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

from ..errors import SchemaTooNew, StoreError, StoreUnavailable, TaskyardError
from .base import Instance
from .filters import glob_to_like
from .migrations import shipped
from .pgconn import PgCursor, PgTick, TickSession, rollback
from .pgtick import PREPARED, PgTickStore
from .sql import Cursor, fault_budget

#: The version the numbered migrations lead to (checked whenever migrations run); a
#: constant so that opening an up-to-date store does not list the package's files.
SCHEMA_VERSION = 27

#: Channel of the wake hint; the payload is the kind (``w``, ``r``, ``s``).
WAKE_CHANNEL = "taskyard_wake"

#: First key of the advisory lock migrations hold (the second is the schema's hash),
#: so concurrent openers of one store migrate one after the other.
_MIGRATE_LOCK = 0x7459  # "tY"
#: Key of the advisory lock claims take turns on.
_CLAIM_LOCK = 0x7459_636C  # "tYcl"
_FOLD_LOCK = 0x7459_666F  # "tYfo"


def migrations() -> list[tuple[int, str]]:
    """Numbered migrations shipped with the package, in order."""
    return shipped("postgres")


class PostgresStore(PgTickStore):
    """A store in a PostgreSQL database (the tables live in the connection's
    ``search_path`` schema). Thread-safe: each transaction takes a pooled connection;
    or, with ``pool=False`` (a one-shot command such as ``taskyard ls``), the one
    connection that checked the schema, taken in turn (no pool to import or start,
    and one connection less)."""

    LENGTH = "octet_length"
    IS_NOT = "IS DISTINCT FROM"
    CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"
    ROW_LOCK = " FOR UPDATE"
    KEY_LOCK = "SELECT pg_advisory_xact_lock(hashtext(?))"
    LIKE_CI = "ILIKE"
    LIKE_ESCAPE = ""  #: backslash is LIKE's escape already (and pg_trgm plans a bare ILIKE)
    LEADING_JOIN = "JOIN"
    PROBES = False  #: its planner has statistics
    #: counts are the folded rows plus the deltas triggers appended since
    COUNTS = ("(SELECT tenant, queue, status, n FROM task_counts UNION ALL"
              " SELECT tenant, queue, status, n FROM task_count_deltas) c")
    #: transaction-scoped (released at commit): safe behind transaction pooling
    CLAIM_SERIALIZE = f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK})"
    MULTI_ROW_INSERT = False
    ALLOCATE_IDS = ("SELECT nextval(pg_get_serial_sequence('tasks', 'id'))"
                    " FROM generate_series(1, ?::bigint) ORDER BY 1")

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4,
                 timeout: float = 30.0, application_name: str = "taskyard",
                 hold_limit: float = 2.5, pool: bool = True) -> None:
        self.dsn = dsn
        #: seconds a session may sit in an open transaction, or wait for a lock: a frozen
        #: process (SIGSTOP, a stalled VM) must not hold the others' locks for longer
        self.hold_limit = hold_limit
        self.application_name = application_name  #: shown in pg_stat_activity
        self.location = _describe(dsn)
        self._fail_after = fault_budget()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_lock = threading.Lock()
        self._ticks = TickSession(self._session_dsn(), application_name, self.location)
        # The schema check (and migration) runs on a connection of its own: a failed
        # connect then reports its cause at once, where the pool would retry in the
        # background until its timeout and report only that. Without a pool it stays.
        try:
            conn = psycopg.connect(self._session_dsn(), autocommit=True,
                                   connect_timeout=max(2, round(timeout)),
                                   application_name=application_name)
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
        except psycopg.Error as exc:
            raise StoreError(f"cannot open store {self.location}: {exc}") from exc
        if not pool:
            self._conn = conn
            return
        conn.close()
        self._open_pool(min_size, max_size, timeout)

    def _open_pool(self, min_size: int, max_size: int, timeout: float) -> None:
        from psycopg_pool import ConnectionPool

        # autocommit: transactions are the explicit BEGIN/COMMIT of _transaction, so a
        # read can ask for its own isolation level on any pooled connection.
        self._pool = ConnectionPool(
            self._session_dsn(), min_size=min_size, max_size=max_size, timeout=timeout,
            open=False, kwargs={"autocommit": True, "application_name": self.application_name},
            name="taskyard")
        self._pool.open(wait=False)

    def _session_dsn(self) -> str:
        """The DSN with the session's limits as startup options (no round trip): seconds
        a session may sit in an open transaction, or wait for a lock."""
        ms = max(100, int(self.hold_limit * 1000))
        options = conninfo_to_dict(self.dsn).get("options") or ""
        limits = f"-c idle_in_transaction_session_timeout={ms} -c lock_timeout={ms}"
        return make_conninfo(self.dsn, options=f"{options} {limits}".strip())

    @contextmanager
    def _connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is not None:
            from psycopg_pool import PoolTimeout

            try:
                pooled = self._pool.getconn(timeout=timeout)
            except PoolTimeout as exc:
                raise StoreUnavailable(f"store {self.location}: no connection: {exc}") from exc
            try:
                yield pooled
            finally:
                self._pool.putconn(pooled)  # rolled back, or dropped if broken
            return
        assert self._conn is not None
        with self._conn_lock:
            if self._conn.closed:
                raise StoreUnavailable(f"store {self.location}: connection lost")
            yield self._conn

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        current = _read_version(conn)
        self._refuse_newer(current)
        if current == SCHEMA_VERSION:
            return
        with conn.transaction():
            # no lock_timeout while migrating: another opener may hold the lock for as
            # long as its migration takes (schema 25 indexes a million tasks in minutes)
            conn.execute("SET LOCAL lock_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(),"
                         " '')))", (_MIGRATE_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS taskyard_schema ("
                         " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
                         " version integer NOT NULL)")
            conn.execute("INSERT INTO taskyard_schema (version) VALUES (0)"
                         " ON CONFLICT (one) DO NOTHING")
            current = _read_version(conn)  # another opener may have migrated meanwhile
            self._refuse_newer(current)
            shipped = migrations()
            if shipped[-1][0] != SCHEMA_VERSION:
                raise TaskyardError(f"migrations lead to {shipped[-1][0]}, SCHEMA_VERSION"
                                    f" is {SCHEMA_VERSION}")
            for version, script in shipped:
                if version > current:
                    conn.execute(script.encode())  # bytes: no placeholders to parse
                    conn.execute("UPDATE taskyard_schema SET version=%s", (version,))

    def _refuse_newer(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"store {self.location} has schema version {current}, newer than this"
                f" taskyard understands ({SCHEMA_VERSION}); upgrade taskyard to use it")

    def meta_text(self, parts: list[str]) -> tuple[str, list[Any]]:
        return "(meta::jsonb #>> ?::text[])", [parts]

    def meta_key(self, parts: list[str]) -> tuple[str, list[Any]]:
        return "?", [".".join(parts)]

    def text_index(self, text: str) -> tuple[str, str, str, list[Any]] | None:
        return None  # pg_trgm's index on the text itself: the planner chooses

    def glob_sql(self, pattern: str) -> tuple[str, list[Any]]:
        return "name LIKE ? ESCAPE '\\'", [glob_to_like(pattern)]

    def heartbeat(self, instance_id: str, now: float) -> Instance:
        instance = super().heartbeat(instance_id, now)
        self.fold_counts()
        return instance

    def fold_counts(self) -> None:
        """Move the deltas the count triggers appended into the totals (one server at a
        time; a server that finds another folding leaves it to that one)."""
        with self._tx() as cur:
            cur.execute(f"SELECT pg_try_advisory_xact_lock({_FOLD_LOCK})")
            if not cur.fetchone()[0]:
                return
            cur.execute("WITH moved AS (DELETE FROM task_count_deltas RETURNING *)"
                        " INSERT INTO task_counts (tenant, queue, status, n)"
                        " SELECT tenant, queue, status, SUM(n) FROM moved"
                        " GROUP BY tenant, queue, status ORDER BY tenant, queue, status"
                        " ON CONFLICT (tenant, queue, status) DO UPDATE"
                        " SET n = task_counts.n + excluded.n")

    def schema_version(self) -> int:
        with self._connection() as conn:
            return _read_version(conn)

    def wake(self, kind: bytes = b"w") -> None:
        """Hint servers (NOTIFY): ``w`` work submitted, ``r`` a control request,
        ``s`` server control. Best effort, like the SQLite datagram: servers also poll.
        (``TASKYARD_FAULT=no-wake`` sends none: tests of the polling floor.)"""
        if os.environ.get("TASKYARD_FAULT") == "no-wake":
            return
        try:
            with self._connection(timeout=1.0) as conn:
                conn.execute("SELECT pg_notify(%s, %s)",
                             (WAKE_CHANNEL, kind.decode("ascii", "replace")))
        except (psycopg.Error, StoreUnavailable):
            pass

    def wake_listener(self) -> PgWakeListener | None:
        """A dedicated connection LISTENing for wake hints; None if it cannot connect
        (the server polls anyway, and asks again later)."""
        try:
            return PgWakeListener(self.dsn, self.application_name)
        except psycopg.Error:
            return None

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        self._injected_fault()
        yield from self._transaction("BEGIN")

    @contextmanager
    def _read_tx(self) -> Iterator[Cursor]:
        yield from self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @contextmanager
    def _tick_tx(self) -> Iterator[PgTick]:
        """A write transaction in batches, on the ticks' own connection (see ``pgtick``)."""
        self._injected_fault()
        try:
            with self._ticks.transaction(PREPARED) as tick:
                yield tick
        except psycopg.Error as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: psycopg.Error) -> StoreError:
        if _connection_lost(exc):
            return StoreUnavailable(f"store {self.location}: connection lost: {exc}")
        return StoreError(f"store {self.location}: {exc}")

    def _transaction(self, begin: str) -> Iterator[Cursor]:
        try:
            with self._connection() as conn:
                with conn.cursor() as cur:
                    cur.execute(begin.encode())
                    try:
                        yield PgCursor(cur)
                    except BaseException:
                        rollback(conn)
                        raise
                    cur.execute(b"COMMIT")
        except psycopg.Error as exc:
            raise self._failure(exc) from exc

    def compact(self, full: bool = False) -> str:
        """VACUUM (ANALYZE) taskyard's tables: their free space is reused (PostgreSQL
        gives it back to the file system only with VACUUM FULL, which locks each table
        while it rewrites it: run that yourself in a quiet hour if you need it)."""
        tables = ("tasks", "attempts", "events", "chunks", "streams", "requests", "signals",
                  "deps", "hook_outbox", "idempotency")
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                for table in tables:
                    conn.execute(f"VACUUM (ANALYZE) {table}".encode())
        except psycopg.Error as exc:
            raise StoreError(f"store {self.location}: VACUUM failed: {exc}") from exc
        return f"vacuumed {len(tables)} tables: their free space will be reused"

    def close(self) -> None:
        self._ticks.close()
        if self._pool is not None:
            self._pool.close()
        if self._conn is not None:
            self._conn.close()


class PgWakeListener:
    """``LISTEN`` on a connection of its own (outside the pool): its socket goes into
    the server's poller; ``drain`` returns the hints that arrived."""

    def __init__(self, dsn: str, application_name: str = "taskyard") -> None:
        self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5,
                                    application_name=application_name)
        self.conn.execute(f"LISTEN {WAKE_CHANNEL}")
        self._fd = self.conn.pgconn.socket

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> bytes:
        """The payloads of the notifications waiting; raises StoreUnavailable if the
        connection is gone (the server then polls and makes a new listener)."""
        pgconn = self.conn.pgconn
        got = b""
        try:
            pgconn.consume_input()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"wake listener: {exc}") from exc
        while True:
            note = pgconn.notifies()
            if note is None:
                return got or b"w"
            got += note.extra or b"w"

    def close(self) -> None:
        self.conn.close()


#: SQLSTATEs that end a session or a transaction without anything being wrong with
#: the statement: the server went away or shut down, the connection broke, a lock wait
#: or an open transaction ran past its limit (the session of a process frozen inside a
#: transaction is ended that way: psycopg files it under InternalError, not
#: OperationalError), a deadlock or a serialization failure. Retrying is right.
_RETRYABLE = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001",
                        "08004", "55P03", "25P03", "40P01", "40001"})


def _connection_lost(exc: psycopg.Error) -> bool:
    """A failure of the connection (the server went away, the network broke), as
    opposed to one of the statement (a constraint, a full disk)."""
    state = getattr(exc, "sqlstate", None)
    if state in _RETRYABLE:
        return True
    if isinstance(exc, psycopg.OperationalError) and state is None:
        return True
    return isinstance(exc, psycopg.InterfaceError)


def _read_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version (0: none yet), in one round trip when there is one."""
    try:  # (in a migration's transaction the table is made first: no error there)
        row = conn.execute("SELECT version FROM taskyard_schema").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def _describe(dsn: str) -> str:
    """host:port/dbname for messages: never the password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql"
    return (f"postgresql://{info.get('host', '')}:{info.get('port', 5432)}"
            f"/{info.get('dbname', '')}")
