"""The embedded store: one SQLite file in WAL mode.

Transactions are explicit: writes use ``BEGIN IMMEDIATE`` so they take the
write lock up front (a deferred transaction that later writes gets SQLITE_BUSY
at once in WAL mode). With ``synchronous=NORMAL`` a commit survives a crash of
any process; ``full`` also survives power loss.

Waiting for the write lock is done here, not by SQLite's busy handler: that
one sleeps 1, 2, 5, 10... ms between tries, so a writer that keeps losing the
race to a client submitting in a loop (each holding the lock ~0.1 ms) slept
8 ms a time on average, with the server's slots idle meanwhile. Trying again
after tens of microseconds gets the lock between two such transactions. So
the connection rests with ``busy_timeout`` 0; the busy handler is switched on
around read transactions only (in WAL mode they wait only for rare things:
a WAL recovery, the last connection's checkpoint on close).

A server's connection does not checkpoint the WAL itself: SQLite's automatic
checkpoint runs inside the commit that crosses 1,000 WAL pages, copies them
into the database file and fsyncs twice, all on the server's one thread (a
stall of milliseconds every ~110 ticks, ~45 µs a tick on average here). A
:class:`Checkpointer` thread with its own connection does it instead, PASSIVE
(never waiting for a lock, never blocking a writer), after every
``CHECKPOINT_COMMITS`` commits of the server and when the WAL file grew by
``CHECKPOINT_PAGES`` pages. Clients keep SQLite's automatic checkpoint.

A WAL starts over (writing from its beginning again) only at a write transaction
that begins when every frame has been copied. A server flushing a lot of output
commits back to back and rarely gives the thread that moment: its WAL grew with
every byte ever written (gigabytes; the output bound keeps ~33 MiB a stream, but
tails are written and deleted as they move). So once the file passes
``WAL_SIZE_LIMIT`` the server itself checkpoints between two of its commits (the
thread has copied most of it already), and the WAL starts over and is cut back.
"""

from __future__ import annotations

import _thread
import functools
import itertools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SchemaTooNew, StoreBusy, StoreError, TaskyardError
from .migrations import shipped
from .sql import Cursor, fault_budget
from .sqlserver import SqlServerStore

BUSY_TIMEOUT_MS = 30_000
COMPACT_PAGES = 256  #: pages a db compact gives back per transaction (~1 MiB)
SERVER_LOCK_WAIT = 0.5  #: seconds; see SQLiteStore._lock_wait (a loop stalled for it reads no pipe)
#: Pauses between tries for the write lock (seconds), the last one repeated until
#: SHORT_WAIT has passed, then LONG_PAUSE until BUSY_TIMEOUT_MS. A client submitting
#: in a loop holds the lock more than half the time; a server that had backed off to
#: 2 ms pauses missed window after window there (stalls of up to 17 ms, measured),
#: with its slots idle meanwhile. A lock held longer (a transaction left open in
#: another program) is not worth trying for every 0.2 ms.
LOCK_PAUSES = (0.0, 0.00002, 0.00005, 0.0001, 0.0002)
SHORT_WAIT = 0.02
LONG_PAUSE = 0.002
#: A background checkpoint runs after about this many WAL pages (SQLite's default
#: for its automatic checkpoint); a server's commit writes ~9 pages.
CHECKPOINT_PAGES = 1000
CHECKPOINT_COMMITS = CHECKPOINT_PAGES // 9
CATCH_UP_TRIES = 20  #: checkpoints in a row while the server writes faster than one copies
#: After the WAL starts over, its file is cut back to this size (it kept its largest).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


#: The version the numbered migrations lead to (a test checks it matches them); a
#: constant so that opening an up-to-date store does not list the package's files.
SCHEMA_VERSION = 26


def migrations() -> list[tuple[int, str]]:
    """Numbered migrations shipped with the package, in order."""
    return shipped("sqlite")



class SQLiteStore(SqlServerStore):
    """A store in one SQLite file. Threads may share one: its transactions take turns.
    A server's store (``server``) checkpoints its WAL from a thread of its own and takes
    a write lock held long elsewhere as the store out of reach for now."""

    events_in_commit_order = True  #: one writer at a time: ids are visible in order

    def __init__(self, path: Path | str, *, synchronous: str = "normal",
                 server: bool = False, impatient: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.checkpointer: Checkpointer | None = None
        #: A Yard may be shared between threads: transactions on its one connection
        #: take turns (``_thread``: no ``threading`` import for every CLI command).
        self._lock = _thread.RLock()
        self._closed = False
        #: A server waits this long for the write lock, then takes the store as out of
        #: reach for now (StoreUnavailable): its loop goes on reading its tasks' pipes
        #: and enforcing their deadlines, and tries again. A client waits it out.
        self._server = server
        self._lock_wait = SERVER_LOCK_WAIT if server else BUSY_TIMEOUT_MS / 1000
        #: ``impatient``: a write that would wait for the lock raises StoreUnavailable at
        #: once, and commits never checkpoint (for a caller that must not block: the web
        #: process's event loop, which then writes from a thread instead)
        self._impatient = impatient
        if impatient:
            self._lock_wait = 0.0
        self._fail_after = fault_budget()
        self._lose_every = fault_budget("store-lost-answer-every")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # A new store can give freed pages back (db compact); this must come before
            # WAL mode is set. On a store that has tables it changes nothing.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            self._migrate()
            self._db.execute("PRAGMA busy_timeout=0")  # see the module's docstring
            self._identity = file_identity(self.path)
            if server or impatient:
                self._db.execute("PRAGMA wal_autocheckpoint=0")
            if server:
                self.checkpointer = Checkpointer(self.path)
                self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        except OSError as exc:  # its directory cannot be made: read-only, a file in the way
            raise StoreError(f"cannot open store {self.path}: {exc.strerror or exc}") from exc

    def _migrate(self) -> None:
        current = self._db.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"store {self.path} has schema version {current}, newer than this taskyard"
                f" understands ({SCHEMA_VERSION}); upgrade taskyard to use it")
        if current == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self._db.execute("PRAGMA user_version").fetchone()[0]
            for version, script in migrations():
                if version > current:
                    for statement in _statements(script):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={version}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def compact(self, full: bool = False) -> str:
        """Give the file's free pages back to the file system. A store made with
        incremental auto-vacuum (every store since schema 17) does it a few hundred
        pages per transaction, never holding the write lock long; an older one needs
        one full VACUUM (``full``: only with no server on it), which also switches it."""
        free_before = self._pragma("freelist_count")
        if self._pragma("auto_vacuum") != 2:
            if not full:
                raise TaskyardError(
                    f"store {self.path} predates incremental vacuum: stop its server, then"
                    " run taskyard db compact again (one full VACUUM switches it)")
            with self._patient():
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._db.execute("VACUUM")
        else:
            while self._pragma("freelist_count") > 0:
                with self._tx() as cur:
                    cur.execute(f"PRAGMA incremental_vacuum({COMPACT_PAGES})")
                    cur.fetchall()
        with self._patient():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        size = self._pragma("page_size") * free_before
        return f"gave {free_before} free pages ({size / 1048576:.1f} MiB) back"

    @contextmanager
    def _patient(self) -> Iterator[None]:
        """Outside any transaction, waiting for other writers as a client does."""
        with self._lock:
            self._open()
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                yield
            except sqlite3.Error as exc:
                raise StoreError(f"store {self.path}: {exc}") from exc
            finally:
                self._db.execute("PRAGMA busy_timeout=0")

    def _pragma(self, name: str) -> int:
        return int(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    def gone(self) -> str | None:
        if file_identity(self.path) != self._identity:
            return f"the store file {self.path} was removed or replaced"
        return None

    @functools.cached_property
    def wake_path(self) -> Path:
        return self.path.parent / "wake.sock"  # once: every submit sends a hint here

    def wake(self, kind: bytes = b"w") -> None:
        """Hint the server: ``w`` work submitted, ``r`` a control request, ``s`` server control."""
        send_wake(self.wake_path, kind)

    def wake_listener(self) -> WakeSocket | None:
        """The server's end of the hint; None where the path is too long for a socket."""
        if len(str(self.wake_path).encode()) >= 100:
            return None
        return WakeSocket(self.wake_path)

    def schema_version(self) -> int:
        with self._read_tx() as cur:
            cur.execute("PRAGMA user_version")
            return int(cur.fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        with self._lock:  # one transaction at a time on the connection, whatever the thread
            self._open()
            self._injected_fault()
            lose = self._injected_loss()
            yield from self._transaction("BEGIN IMMEDIATE")
            if lose:
                self._lost_answer()

    @contextmanager
    def _read_tx(self) -> Iterator[Cursor]:
        with self._lock:
            self._open()
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                yield from self._transaction("BEGIN")
            finally:
                self._db.execute("PRAGMA busy_timeout=0")

    def _open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path}: this connection was closed (a closed Yard?)")

    def _transaction(self, begin: str) -> Iterator[Cursor]:
        cur = self._db.cursor()
        try:
            _begin(cur, begin, self._lock_wait)
        except LockWaitExceeded as exc:
            if self._server or self._impatient:
                raise StoreBusy(f"store {self.path}: {exc}") from exc
            raise StoreError(f"store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: {exc}") from exc
        try:
            yield cur
            cur.execute("COMMIT")
            if self.checkpointer is not None:
                self.checkpointer.committed()
                if self.checkpointer.restart_wanted:
                    self._catch_up()
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"store {self.path}: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            cur.close()

    def _catch_up(self) -> None:
        """Copy the last frames of a big WAL on the server's own connection, between two
        of its transactions, so that the next one starts the WAL over (and cuts its file
        back to WAL_SIZE_LIMIT). The commit before is done whatever happens here."""
        assert self.checkpointer is not None
        self.checkpointer.restart_wanted = False
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass  # tried again once the checkpointer finds the WAL big again

    def checkpoint_wal(self) -> None:
        """Copy the WAL into the database file as far as no reader needs it (PASSIVE:
        never waits), for writers whose commits do not checkpoint (``impatient``)."""
        with self._lock:
            self._open()
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"store {self.path}: {exc}") from exc

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        with self._lock:
            if self.checkpointer is not None:
                self.checkpointer.stop()
                self.checkpointer = None
            self._closed = True
            self._db.close()


class Checkpointer:
    """Checkpoints the WAL of ``path`` from a thread of its own (see the module's
    docstring): after every CHECKPOINT_COMMITS commits of the server, and once the WAL
    file grew by CHECKPOINT_PAGES (large output writes many pages a commit; looked at
    every 8th commit, and once a second). A checkpoint that fails is logged and tried
    again later: the WAL still holds every commit, so nothing diverges; it only grows."""

    def __init__(self, path: Path) -> None:
        import threading  # here: clients (every CLI command) never need it

        self.wal = Path(f"{path}-wal")
        self.path = path
        # Opened here, so that a store that cannot be opened twice fails at start.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.commits = 0  #: since the last checkpoint (a rough count: no lock needed)
        self.checked = 0  #: the WAL's size after the last checkpoint
        self.restart_wanted = False  #: the WAL is big: the server's next commit catches up
        self.due = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="taskyard-checkpoint",
                                       daemon=True)
        self.thread.start()

    def committed(self) -> None:
        """After each commit of the server: every CHECKPOINT_COMMITS commits, or once
        the WAL grew CHECKPOINT_PAGES (looked at every 8th commit: a stat), a checkpoint
        is due."""
        self.commits += 1
        if self.commits >= CHECKPOINT_COMMITS or (self.commits % 8 == 0 and self._grown()):
            self.commits = 0
            self.due.set()

    def _grown(self) -> bool:
        size = self._wal_size()
        if size > 2 * WAL_SIZE_LIMIT:
            # The thread has not kept up (a burst of large commits, a slow disk, no CPU
            # for it): the server catches up itself at its next commit, whatever is
            # left to copy, so that the WAL stays bounded (a test saw it at 40 MiB of an
            # 8 MiB limit while the thread had not run yet).
            self.restart_wanted = True
        return size - self.checked >= CHECKPOINT_PAGES * 4096

    def _wal_size(self) -> int:
        try:
            return self.wal.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        db = self.db
        try:
            self.checked = self._wal_size()
            behind = False
            while not self.stopping:
                # Behind (frames written faster than copied), look again soon.
                look = 0.05 if behind else 1.0
                if not self.due.wait(look) and not behind and not self._grown():
                    continue
                self.due.clear()
                if self.stopping:
                    break
                behind = self._checkpoint(db)
                self.checked = self._wal_size()
                # A WAL starts over only at a write transaction that begins when every
                # frame is copied; a server committing back to back rarely does. It
                # checkpoints once itself then (little is left to copy), see
                # SQLiteStore._transaction.
                self.restart_wanted = self.checked > WAL_SIZE_LIMIT
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> bool:
        """PASSIVE checkpoints until every frame is copied (then the server's next commit
        starts the WAL over; never while a writer keeps ahead of us, which let the WAL
        grow with all the output ever written, gigabytes); True if still behind."""
        for _ in range(CATCH_UP_TRIES):
            try:
                _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                import logging  # here: clients (every CLI command) never need it

                logging.getLogger("taskyard.store").warning(
                    "WAL checkpoint of %s failed (will try again): %s", self.path, exc)
                return False
            if frames < 0 or copied >= frames:
                return False
        return True

    def stop(self) -> None:
        self.stopping = True
        self.due.set()
        self.thread.join(5.0)


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, None if it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class LockWaitExceeded(sqlite3.OperationalError):
    """Another connection held the write lock for longer than we wait."""


def _begin(cur: sqlite3.Cursor, begin: str, limit: float) -> None:
    """``begin``, tried again after short pauses while busy: ``BEGIN IMMEDIATE`` waits
    for the write lock here (busy_timeout is 0); a deferred ``BEGIN`` takes no lock and
    never is."""
    started = time.monotonic()
    deadline = started + limit
    for pause in itertools.chain(LOCK_PAUSES, itertools.repeat(LOCK_PAUSES[-1])):
        try:
            cur.execute(begin)
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if now >= deadline:
                raise LockWaitExceeded(
                    f"database is locked (waited {limit:g} s for the write lock)") from exc
        time.sleep(pause if now - started < SHORT_WAIT else LONG_PAUSE)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``sqlite3.complete_statement`` keeps triggers whole)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        raise TaskyardError("incomplete statement in migration")


class WakeSocket:
    """A datagram socket beside the database: clients send a byte after a write
    the server should act on. A hint only: the server also polls, so a lost
    datagram costs latency, never correctness."""

    def __init__(self, path: Path) -> None:
        import socket

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.sock.bind(str(path))

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> bytes:
        """The hints waiting (at most 4 KiB of them); the socket is left empty or nearly."""
        got = b""
        while len(got) < 4096:
            try:
                got += self.sock.recv(256)
            except OSError:  # BlockingIOError: nothing more waits
                break
        return got

    def close(self) -> None:
        self.sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass


_wake_socket: Any = None  #: one datagram socket per process, made on the first hint


def send_wake(path: Path, payload: bytes = b"w") -> None:
    """Best effort: nobody listening, a full buffer or a long path are all fine.
    The socket is kept for the next hint (a loop of submits sends one each)."""
    global _wake_socket
    import _socket  # the C module: ``socket`` costs milliseconds to import on every submit

    if _wake_socket is None:
        try:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
            sock.setblocking(False)
        except OSError:
            return
        _wake_socket = sock
        import atexit  # closed at exit, not left to the collector (a ResourceWarning)

        atexit.register(sock.close)
    try:
        _wake_socket.sendto(payload, str(path))
    except OSError:
        pass
