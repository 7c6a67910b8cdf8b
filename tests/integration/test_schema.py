from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from taskyard.errors import SchemaTooNew
from taskyard.store.sqlite import SCHEMA_VERSION, SQLiteStore
from taskyard.testing import cli


def test_new_store_gets_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    assert store.schema_version() == SCHEMA_VERSION
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "taskyard.db").close()
    db = sqlite3.connect(tmp_path / "taskyard.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        SQLiteStore(tmp_path / "taskyard.db")
    result = cli(tmp_path, "ls")
    assert result.returncode == 1
    assert b"newer than this taskyard" in result.stderr and b"Traceback" not in result.stderr


def test_schema_version_constant_matches_the_migrations() -> None:
    from taskyard.store.sqlite import migrations

    numbers = [v for v, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert numbers[-1] == SCHEMA_VERSION


def test_a_new_home_is_private(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "fresh" / "taskyard.db").close()
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700


def test_postgres_schema_version_constant_matches_its_migrations() -> None:
    pytest.importorskip("psycopg")
    from taskyard.store.postgres import SCHEMA_VERSION as PG_VERSION
    from taskyard.store.postgres import migrations as pg_migrations

    numbers = [v for v, _ in pg_migrations()]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers[-1] == PG_VERSION


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    from taskyard.store.sqlite import _statements, migrations

    path = tmp_path / "taskyard.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(dict(migrations())[1]):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO tasks (status, argv, env, meta, created_at, changed_by, changed_at)"
               " VALUES ('queued', '[\"true\"]', '{}', '{}', 1.0, 'old', 1.0)")
    db.close()
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    (task,) = store.list_tasks()
    assert task.argv == ("true",) and task.timeout is None


def test_the_claim_reads_an_index_in_order_without_sorting(tmp_path: Path) -> None:
    """A planner regression (a sort of the whole queue on every claim) once doubled the
    server's CPU per task; the query plan says whether it is back."""
    from taskyard.store.sqlserver import _CLAIM_FROM, _NOT_PAUSED, _TENANT_ENABLED, CLAIM_ORDER

    store = SQLiteStore(tmp_path / "taskyard.db")
    from taskyard.model import TaskSpec

    for _ in range(50):
        store.submit(TaskSpec(argv=("true",)), by="t")
    db = sqlite3.connect(tmp_path / "taskyard.db")
    plan = db.execute("EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE status IN"
                      f" {_CLAIM_FROM} AND {_NOT_PAUSED} AND {_TENANT_ENABLED}"
                      " AND queue NOT IN ('a') AND (mutex IS NULL OR mutex NOT IN ('m'))"
                      f" ORDER BY {CLAIM_ORDER} LIMIT 2"
                      ).fetchall()
    details = " ".join(row[-1] for row in plan)
    assert "INDEX tasks_status" in details and "TEMP B-TREE" not in details, details


def test_a_writer_waits_for_the_write_lock_without_sleeping_milliseconds(tmp_path: Path) -> None:
    """Another connection holding the write lock is waited out (not an error), and a
    writer that comes in between short transactions gets its turn promptly."""
    import threading
    import time

    from taskyard import Yard

    path = tmp_path / "taskyard.db"
    SQLiteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    released.start()
    t0 = time.monotonic()
    with Yard(tmp_path) as y:
        task = y.submit(["true"])
        waited = time.monotonic() - t0
        assert waited >= 0.15
        assert y.get(task.id).status == "queued"
    released.join()

    # A client writing in a tight loop does not starve another writer.
    stop = threading.Event()

    def hammer() -> None:
        with Yard(tmp_path) as busy:
            while not stop.is_set():
                busy.submit(["true"])

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        with Yard(tmp_path) as y:
            worst = 0.0
            for _ in range(50):
                t = time.monotonic()
                y.submit(["true"])
                worst = max(worst, time.monotonic() - t)
    finally:
        stop.set()
        thread.join()
    assert worst < 0.5, worst


def test_a_writer_tries_for_the_lock_often_at_first_then_every_few_ms(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the lock is busy for a short while (another writer's transactions) the
    tries come at most 0.2 ms apart; past SHORT_WAIT they slow to LONG_PAUSE.

    The lock is real; the clock the waiting loop reads is the test's, advanced only by
    the loop's own pauses: which pause comes when is then the loop's rule alone, not
    how long a loaded machine took to run it (times read beside the loop's own were
    off by more than SHORT_WAIT under load)."""
    import types

    from taskyard.store import sqlite as sqlite_store

    path = tmp_path / "taskyard.db"
    store = SQLiteStore(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    clock = [1000.0]
    pauses: list[tuple[float, float]] = []  # (seconds waited by then, pause chosen)
    long_pauses_to_see = 3

    def sleep(seconds: float) -> None:
        pauses.append((clock[0] - 1000.0, seconds))
        clock[0] += seconds
        if [p for _, p in pauses].count(sqlite_store.LONG_PAUSE) == long_pauses_to_see:
            holder.execute("COMMIT")  # the other writer is done: the next try gets in

    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep)
    monkeypatch.setattr(sqlite_store, "time", fake_time)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with store._tx() as cur:
            cur.execute("SELECT 1")
    finally:
        holder.close()
        store.close()
    chosen = [p for _, p in pauses]
    short = [p for at, p in pauses if at < sqlite_store.SHORT_WAIT]
    assert short == [*sqlite_store.LOCK_PAUSES, *[sqlite_store.LOCK_PAUSES[-1]]
                     * (len(short) - len(sqlite_store.LOCK_PAUSES))]
    assert chosen[len(short):] == [sqlite_store.LONG_PAUSE] * long_pauses_to_see
    assert sum(short) >= sqlite_store.SHORT_WAIT - 1e-9


def test_a_write_lock_held_too_long_is_a_clear_store_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskyard.errors import StoreError
    from taskyard.store import sqlite as sqlite_store

    path = tmp_path / "taskyard.db"
    store = SQLiteStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 100)
    with pytest.raises(StoreError, match="locked"):
        store.record_spawned("nobody", [])
    holder.execute("ROLLBACK")
    assert store.schema_version() == SCHEMA_VERSION


def _threads_named(name: str) -> list[object]:
    import threading

    return [t for t in threading.enumerate() if t.name == name]


def test_a_servers_store_checkpoints_the_wal_from_a_thread_of_its_own(tmp_path: Path) -> None:
    """A server's connection never checkpoints inside its commits (fsyncs on the loop);
    its store's checkpoint thread copies the WAL into the database file instead."""
    from taskyard.model import TaskSpec
    from taskyard.testing import wait_for

    path = tmp_path / "taskyard.db"
    SQLiteStore(path).close()  # created and migrated: the WAL is checkpointed on close
    before = path.stat().st_size
    store = SQLiteStore(path, server=True)
    try:
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert len(_threads_named("taskyard-checkpoint")) == 1
        for _ in range(300):  # a commit each, the count that asks for a checkpoint
            store.submit(TaskSpec(("true",)), by="test")
        wait_for(lambda: path.stat().st_size > before, 10, message="a checkpoint")
        # A few large commits (many pages each) are checkpointed too, by the WAL's growth.
        grown = path.stat().st_size
        store.submit(TaskSpec(("cat",), stdin=b"x" * (6 << 20)), by="test")
        wait_for(lambda: path.stat().st_size > grown + (4 << 20), 10,
                 message="a checkpoint of a large commit")
    finally:
        store.close()
    assert not _threads_named("taskyard-checkpoint")
    reopened = SQLiteStore(path)
    try:
        assert len(reopened.list_tasks(limit=1000)) == 301
    finally:
        reopened.close()


def test_a_server_writing_back_to_back_still_starts_its_wal_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A WAL starts over only at a transaction that begins with every frame copied; a
    server committing without pause never gave the checkpoint thread that moment, and
    its WAL grew with every byte of output ever written (gigabytes). Past the limit the
    server catches up itself between two commits and the file is cut back."""
    from taskyard.store import sqlite as sqlite_store
    from taskyard.store.sqlite import Checkpointer

    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT", 8 << 20)
    path = tmp_path / "taskyard.db"
    store = SQLiteStore(path, server=True)
    wal = Path(f"{path}-wal")
    sizes: list[int] = []
    try:
        store._db.execute("CREATE TABLE junk (b BLOB)")
        blob = b"x" * (1 << 20)
        for n in range(160):  # 160 MiB, one commit after the other, never a pause
            with store._tx() as cur:
                cur.execute("INSERT INTO junk VALUES (?)", (blob,))
                cur.execute("DELETE FROM junk WHERE rowid < ?", (n - 4,))
            sizes.append(wal.stat().st_size)
        assert isinstance(store.checkpointer, Checkpointer)
    finally:
        store.close()
    # Before, it only grew (to 160+ MiB here); now it starts over while being written.
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))
    assert min(sizes[len(sizes) // 2:]) <= 8 << 20


def test_wake_hints_reach_the_server_socket_through_one_client_socket(tmp_path: Path) -> None:
    """Each submit sends a hint; a process keeps one datagram socket for all of them,
    and a hint with nobody listening (or a bad path) is dropped quietly."""
    from taskyard.store import sqlite as sqlite_store
    from taskyard.store.sqlite import WakeSocket, send_wake
    from taskyard.testing import wait_for

    send_wake(tmp_path / "nobody-listens.sock")
    listener = WakeSocket(tmp_path / "wake.sock")
    try:
        send_wake(listener.path, b"w")
        first = sqlite_store._wake_socket
        send_wake(listener.path, b"r")
        assert sqlite_store._wake_socket is first is not None
        got = b""

        def both() -> bool:
            nonlocal got
            got += listener.drain()
            return got == b"wr"

        wait_for(both, 5, message="both hints")
    finally:
        listener.close()
