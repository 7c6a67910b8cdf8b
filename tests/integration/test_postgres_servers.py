"""Several servers on one PostgreSQL store: one queue, nothing lost when a node dies."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard, lifecycle
from taskyard.model import Schedule, TaskSpec
from taskyard.testing import instance_id, pids_with_tag, server_process, stop_server, wait_for

LEASE = 2.0


def _env(dsn: str) -> dict[str, str]:
    return dict(os.environ, TASKYARD_STORE=dsn, TASKYARD_LEASE=str(LEASE),
                TASKYARD_HEARTBEAT_INTERVAL="0.3", TASKYARD_POLL_INTERVAL="0.5")


def test_a_server_on_postgres_runs_tasks_woken_by_notify(tmp_path: Path, pg_dsn: str) -> None:
    env = dict(_env(pg_dsn), TASKYARD_POLL_INTERVAL="30")  # a start needs the NOTIFY
    proc = server_process(tmp_path / "a", "--slots", "2", env=env)
    try:
        with Yard(tmp_path / "client", store=pg_dsn) as y:
            t = y.submit(["echo", "from postgres"])
            done = y.wait(t.id, timeout=10)
            assert done is not None and done.status is Status.SUCCEEDED
            assert y.logs(t.id).data == b"from postgres\n"
    finally:
        stop_server(proc)


def test_three_servers_kill_9_and_freeze(tmp_path: Path, pg_dsn: str,
                                        busy_cpus: list[int]) -> None:
    """1,000 tasks on 3 servers; kill -9 of a random server three times and one
    SIGSTOP past the lease: every task ends, none runs twice, no orphan, no stale
    write, and each missed cron tick fires exactly once. With busy loops on every
    CPU: fencing must not need a quiet machine."""
    env = _env(pg_dsn)
    markers = tmp_path / "markers"
    homes = [tmp_path / name for name in ("a", "b", "c")]
    with Yard(tmp_path / "client", store=pg_dsn) as y:
        created = (time.time() // 60 - 30) * 60 + 1
        y._store.add_schedule(Schedule("minutely", "* * * * *", "UTC", "default", "all", None,
                                       TaskSpec(argv=("true",)), False, 0.0, None, 0, created))
        ids = [y.submit(["sh", "-c", f'echo "$TASKYARD_TASK_ID" >> {markers}; sleep 0.02']).id
               for _ in range(1000)]
    procs = {h: server_process(h, "--slots", "2", env=env) for h in homes}
    instances = {instance_id(h) for h in homes}
    rng = random.Random(7)
    try:
        with Yard(tmp_path / "client", store=pg_dsn) as y:
            def ended() -> int:  # the kept counts: one short read, not every row
                counts = y.counts()
                return sum(counts[s.value] for s in lifecycle.TERMINAL)

            for round_ in range(4):
                wait_for(lambda r=round_: ended() >= 150 * (r + 1), timeout=120,
                         message="progress between faults")
                victim = rng.choice(homes)
                if round_ == 2:  # freeze one past its lease: it is fenced, and stops
                    procs[victim].send_signal(signal.SIGSTOP)
                    time.sleep(LEASE * 2)
                    procs[victim].send_signal(signal.SIGCONT)
                    assert procs[victim].wait(20) == 1
                    assert "fenced" in (victim / "server.log").read_text()
                else:
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait()
                procs[victim] = server_process(victim, "--slots", "2", env=env)
                instances.add(instance_id(victim))
            wait_for(lambda: ended() >= len(ids) + 30, timeout=180, message="everything ends")
            tasks = {t.id: t for t in y.list()}
            _check(y, tasks, ids, markers, created)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            stop_server(proc)
    wait_for(lambda: not any(pids_with_tag(i + ".") for i in instances), timeout=10,
             message="no orphan process")


def _check(y: Yard, tasks: dict[int, object], ids: list[int], markers: Path,
           created: float) -> None:
    runs = Counter(int(line) for line in markers.read_text().split())
    crashed = 0
    for task_id in ids:
        task = y.get(task_id)
        assert task.terminal, task
        assert runs[task_id] <= 1, f"task {task_id} ran {runs[task_id]} times"
        if task.status is Status.SUCCEEDED:
            assert runs[task_id] == 1
        else:
            assert (task.status, task.reason) == (Status.FAILED, Reason.CRASHED), task
            crashed += 1
        attempts = y.attempts(task_id)
        assert len(attempts) == 1 and attempts[0].status is task.status
        events = y.events(task_id)
        assert all(lifecycle.is_legal(e.from_status, e.to_status) for e in events)
        assert events[-1].to_status is task.status
    assert crashed <= 3 * 2 * 2, "at most the running tasks of the faulted servers crash"
    _check_ticks([t.fire_at for t in y.list() if t.schedule == "minutely" and t.fire_at],
                 created)


def _check_ticks(ticks: list[float], created: float) -> None:
    """Exactly once per due tick, whatever the wall time the test took: no tick fired
    twice, none missed from the first due one (the minute after ``created``) to the
    last fired, the 30 missed before the servers started among them, none in the
    future. (How many fired depends on how long the test ran: not checked.)"""
    ticks.sort()
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    assert ticks[0] == created + 59, "the first missed tick fired"
    assert all(b - a == 60 for a, b in zip(ticks, ticks[1:], strict=False)), ticks
    assert len(ticks) >= 30 and ticks[-1] <= time.time(), ticks


def test_the_cli_on_a_postgres_store(tmp_path: Path, pg_dsn: str) -> None:
    from taskyard.testing import cli

    home = tmp_path / "h"
    status = cli(home, "--store", pg_dsn, "db", "upgrade")
    assert status.returncode == 0 and b"schema version" in status.stdout, status.stderr
    assert cli(home, "--store", pg_dsn, "submit", "--", "true").stdout.strip() == b"1"
    listed = cli(home, "--store", pg_dsn, "ls", "--json")
    assert listed.returncode == 0 and b'"queued"' in listed.stdout
    bad = cli(home, "--store", "mysql://x", "ls")
    assert bad.returncode == 2 and b"store" in bad.stderr
    gone = cli(home, "--store", "postgresql://nobody@127.0.0.1:1/none", "ls")
    assert gone.returncode == 1 and gone.stderr.count(b"\n") == 1, gone.stderr


def test_lost_connections_are_waited_out_and_nothing_is_lost(tmp_path: Path,
                                                             pg_dsn: str) -> None:
    """Every connection of the server is terminated three times while tasks start and
    end: the server reconnects, reads back its interrupted commits, and goes on."""
    import psycopg

    from tests.contract.conftest import PG_DSN

    proc = server_process(tmp_path / "a", "--slots", "2", env=_env(pg_dsn))
    try:
        with Yard(tmp_path / "client", store=pg_dsn) as y:
            ids = [y.submit(["sleep", "0.05"]).id for _ in range(60)]
            with psycopg.connect(PG_DSN, autocommit=True) as admin:

                def terminated() -> int:  # the server's sessions ended now (0: none open)
                    row = admin.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = 'taskyard-server'").fetchone()
                    return 0 if row is None else int(row[0])

                for round_ in range(3):
                    # tasks ended since the last cut: the server reconnected and went on
                    # (a fixed pause was too short for its reconnect under load)
                    wait_for(lambda r=round_: sum(1 for t in y.list() if t.terminal)
                             >= 5 * (r + 1), timeout=60, message="tasks run")
                    wait_for(terminated, timeout=30, message="a server session to end")
            for task_id in ids:
                done = y.wait(task_id, timeout=60)
                assert done is not None and done.status is Status.SUCCEEDED, done
                assert len(y.attempts(task_id)) == 1
        assert proc.poll() is None, "the server is still up"
        assert "store unavailable" in (tmp_path / "a" / "server.log").read_text()
    finally:
        stop_server(proc)


def test_without_notify_tasks_still_start_within_the_poll_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> None:
    monkeypatch.setenv("TASKYARD_FAULT", "no-wake")  # clients send no NOTIFY
    # A heartbeat every 10 s would find the tasks too: with polling every 0.5 s each
    # starts long before that, and the quickest of three within the interval (plus
    # 0.3 s for a machine others share: a bound on every start would flake under load).
    env = dict(_env(pg_dsn), TASKYARD_POLL_INTERVAL="0.5",
               TASKYARD_HEARTBEAT_INTERVAL="10", TASKYARD_LEASE="30")
    proc = server_process(tmp_path / "a", "--slots", "2", env=env)
    try:
        with Yard(tmp_path / "client", store=pg_dsn) as y:
            waits = []
            for _ in range(3):
                t0 = time.time()
                task = y.submit(["true"])
                done = y.wait(task.id, timeout=30)
                assert done is not None and done.started_at is not None
                waits.append(done.started_at - t0)
            assert max(waits) < 5, f"started by polling, not by a heartbeat: {waits}"
            assert min(waits) < 0.5 + 0.3, f"started within the poll interval: {waits}"
    finally:
        stop_server(proc)


def test_a_session_ended_for_sitting_in_a_transaction_is_unavailable_not_failed(
        pg_dsn: str) -> None:
    """A server frozen inside a transaction finds its session ended when it wakes: that
    is the store out of reach for a moment (reconnect, read back, and learn whether it
    was fenced), not a failed write that stops it without saying why."""
    from taskyard.errors import StoreUnavailable
    from taskyard.store.postgres import PostgresStore

    store = PostgresStore(pg_dsn, hold_limit=0.1)
    try:
        with pytest.raises(StoreUnavailable, match="idle-in-transaction"):
            with store._tx() as cur:
                cur.execute("SELECT 1")
                time.sleep(0.5)  # the fault itself: frozen past the limit in a transaction
                cur.execute("SELECT 1")
        assert store.schema_version() >= 1  # and the next transaction just works
    finally:
        store.close()
