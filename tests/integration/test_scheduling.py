"""Queue limits, mutexes, tenants and dead servers, with real servers and children."""

from __future__ import annotations

import os
import pwd
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.testing import (
    instance_id,
    pids_with_tag,
    process_alive,
    running_server,
    server_process,
    stop_server,
    wait_for,
)

# A task that logs "start ID" and "end ID" (O_APPEND: lines never interleave) around a nap.
NAP = ("import os, sys, time; f = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT);"
       " i = os.environ['TASKYARD_TASK_ID']; os.write(f, f'start {i}\\n'.encode());"
       " time.sleep(float(sys.argv[2])); os.write(f, f'end {i}\\n'.encode())")


def _nap(log: Path, seconds: float = 0.05) -> list[str]:
    return [sys.executable, "-c", NAP, str(log), str(seconds)]


def _intervals(log: Path) -> list[tuple[str, int]]:
    return [(kind, int(i)) for kind, i in (line.split() for line in log.read_text().split("\n")
                                            if line)]


def _never_overlap(events: list[tuple[str, int]]) -> None:
    """Every start is followed by its own end before the next start."""
    for (k1, i1), (k2, i2) in zip(events[::2], events[1::2], strict=True):
        assert (k1, k2) == ("start", "end") and i1 == i2, events


def _all_done(y: Yard, ids: list[int], timeout: float = 60) -> None:
    for i in ids:
        t = y.wait(i, timeout=timeout)
        assert t is not None and t.status is Status.SUCCEEDED, t


def test_parallel_one_queue_runs_in_submit_order_under_load(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    with running_server(home, "--slots", "4"), Yard(home) as y:
        y.set_queue_parallel("serial", 1)
        ids = []
        for n in range(25):
            ids.append(y.submit(_nap(log, 0.02), queue="serial").id)
            if n % 5 == 0:  # other work competing for the slots
                y.submit(["sleep", "0.1"])
        _all_done(y, ids)
    events = _intervals(log)
    _never_overlap(events)
    assert [i for kind, i in events if kind == "start"] == ids


def test_mutex_holds_across_two_servers_on_one_sqlite_store(tmp_path: Path) -> None:
    """A server that ends a mutex task claims the next one in the same transaction, so
    to see the other server take over, the first one stops claiming (warm stop) while
    its mutex task still runs: the second must wait for it."""
    shared = tmp_path / "shared.db"
    log = tmp_path / "mutex.log"
    env = dict(os.environ, TASKYARD_STORE=str(shared), TASKYARD_POLL_INTERVAL="0.1")
    a = server_process(tmp_path / "a", "--slots", "3", env=env)
    b = server_process(tmp_path / "b", "--slots", "3", env=env)
    try:
        with Yard(tmp_path / "a", store=str(shared)) as y:
            ids = [y.submit(_nap(log, 0.1), queue=f"q{n % 3}", mutex="db").id
                   for n in range(16)]
            free = [y.submit(["true"]).id for _ in range(6)]
            first = wait_for(lambda: next((i for i in ids if y.get(i).status is Status.RUNNING),
                                          None), message="a mutex task runs")
            owner = y.attempts(first)[-1].owner
            (home,) = [h for h in ("a", "b") if instance_id(tmp_path / h) == owner]
            (a if home == "a" else b).send_signal(signal.SIGTERM)  # warm: it finishes, claims no more
            _all_done(y, ids + free)
            owners = {att.owner for i in ids for att in y.attempts(i)}
        assert len(owners) == 2, "the other server took over the mutex tasks"
    finally:
        stop_server(a)
        stop_server(b)
    events = _intervals(log)
    assert len(events) == 32
    _never_overlap(events)


def test_a_disabled_tenant_waits_and_runs_once_enabled(home: Path) -> None:
    with running_server(home, "--slots", "2", "--poll-interval", "0.2"), Yard(home) as y:
        y.add_tenant("acme", enabled=False)
        held = y.submit(["true"], tenant="acme")
        other = y.submit(["true"])
        _all_done(y, [other.id])
        for _ in range(3):  # several polls later it still waits, untouched
            _all_done(y, [y.submit(["true"]).id])
        assert y.get(held.id).status is Status.QUEUED and y.get(held.id).attempt == 0
        y.enable_tenant("acme")
        _all_done(y, [held.id])


def test_run_as_a_tenants_login(home: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    with running_server(home, "--slots", "2"), Yard(home) as y:
        y.add_tenant("guest", run_as="nobody")
        t = y.submit(["id", "-u"], tenant="guest", cwd="/")
        done = y.wait(t.id, timeout=10)
        assert done is not None
        if os.geteuid() == 0:
            assert done.status is Status.SUCCEEDED, done
            assert y.logs(t.id).data == f"{nobody.pw_uid}\n".encode()
        else:
            assert (done.status, done.reason) == (Status.FAILED, Reason.SPAWN)
            assert "not root" in (done.error or "")
        y.add_tenant("ghost", run_as="no-such-user-here")
        t = y.submit(["true"], tenant="ghost")
        done = y.wait(t.id, timeout=10)
        assert done is not None and done.reason is Reason.SPAWN
        assert "no such user" in (done.error or "")


def _two_servers(tmp_path: Path) -> tuple[dict[str, str], subprocess.Popen[bytes],
                                          subprocess.Popen[bytes]]:
    env = dict(os.environ, TASKYARD_STORE=str(tmp_path / "shared.db"), TASKYARD_LEASE="2",
               TASKYARD_HEARTBEAT_INTERVAL="0.3")
    a = server_process(tmp_path / "a", "--slots", "1", env=env)
    b = server_process(tmp_path / "b", "--slots", "1", env=env)
    return env, a, b


def test_a_killed_server_is_taken_over_by_its_peer(tmp_path: Path) -> None:
    _, a, b = _two_servers(tmp_path)
    try:
        with Yard(tmp_path / "a", store=str(tmp_path / "shared.db")) as y:
            tasks = [y.submit(["sleep", "999"]).id for _ in range(2)]
            wait_for(lambda: all(y.get(i).pid for i in tasks), message="both running")
            victim = instance_id(tmp_path / "a")
            on_a = [i for i in tasks if y.attempts(i)[-1].owner == victim]
            a.send_signal(signal.SIGKILL)
            a.wait()
            for i in on_a:
                done = y.wait(i, timeout=2 * 2 + 2)
                assert done is not None and done.reason is Reason.CRASHED, done
            wait_for(lambda: not pids_with_tag(victim + "."), timeout=5,
                     message="the dead server's children were killed")
            survivor = [i for i in tasks if i not in on_a]
            assert all(y.get(i).status is Status.RUNNING for i in survivor)
    finally:
        stop_server(a)
        stop_server(b)


def test_a_frozen_server_is_fenced_and_stops_when_it_wakes(tmp_path: Path) -> None:
    _, a, b = _two_servers(tmp_path)
    try:
        with Yard(tmp_path / "a", store=str(tmp_path / "shared.db")) as y:
            tasks = [y.submit(["sleep", "999"]).id for _ in range(2)]
            wait_for(lambda: all(y.get(i).pid for i in tasks), message="both running")
            victim = instance_id(tmp_path / "a")
            (frozen,) = [i for i in tasks if y.attempts(i)[-1].owner == victim]
            a.send_signal(signal.SIGSTOP)
            done = y.wait(frozen, timeout=2 * 2 + 2)  # within twice the lease
            assert done is not None and done.reason is Reason.CRASHED, done
            a.send_signal(signal.SIGCONT)
            assert a.wait(10) == 1
            assert "fenced" in (tmp_path / "a" / "server.log").read_text()
            assert not pids_with_tag(victim + ".")
            assert y.get(frozen).status is Status.FAILED
    finally:
        stop_server(a)
        stop_server(b)


@pytest.mark.parametrize("flag", ["--parallel 0", "--parallel x"])
def test_queue_set_rejects_bad_limits(home: Path, flag: str) -> None:
    from taskyard.testing import cli

    got = cli(home, "queue", "set", "q", *flag.split())
    assert got.returncode == 2 and got.stderr.count(b"\n") == 1, got.stderr


def test_cron_ticks_fire_exactly_once_across_servers_kill_and_restart(tmp_path: Path) -> None:
    """A schedule that missed 30 ticks (catch-up all) is fired by whichever of two
    servers gets there: 30 tasks, once each, also after a kill -9 and a restart."""
    import time

    from taskyard.model import Schedule, TaskSpec
    from taskyard.store.sqlite import SQLiteStore

    shared = tmp_path / "shared.db"
    created = (time.time() // 60 - 30) * 60 + 1  # 30 minute ticks ago, and a second
    db = SQLiteStore(shared)
    db.add_schedule(Schedule("minutely", "* * * * *", "UTC", "default", "all", None,
                             TaskSpec(argv=("true",)), False, 0.0, None, 0, created))
    db.close()
    env = dict(os.environ, TASKYARD_STORE=str(shared), TASKYARD_LEASE="2",
               TASKYARD_HEARTBEAT_INTERVAL="0.3")
    a = server_process(tmp_path / "a", "--slots", "2", env=env)
    b = server_process(tmp_path / "b", "--slots", "2", env=env)
    try:
        with Yard(tmp_path / "a", store=str(shared)) as y:
            def fired() -> list[float]:
                return sorted(t.fire_at for t in y.list() if t.schedule == "minutely"
                              and t.fire_at is not None)

            wait_for(lambda: len(fired()) >= 30, message="the missed ticks fired")
            a.send_signal(signal.SIGKILL)
            a.wait()
            a = server_process(tmp_path / "a", "--slots", "2", env=env)
            for t in [t for t in y.list() if t.schedule == "minutely"]:
                done = y.wait(t.id, timeout=60)  # those the killed server ran end crashed
                assert done is not None and (done.status is Status.SUCCEEDED
                                             or done.reason is Reason.CRASHED), done
            ticks = fired()
            assert ticks == sorted(set(ticks)), "no tick twice"
            assert 30 <= len(ticks) <= 31  # a real minute may have passed meanwhile
            assert ticks[0] == created + 59
            assert y.get_schedule("minutely").fired == len(ticks)
            run = y.run_schedule("minutely")
            _all_done(y, [run.id])
    finally:
        stop_server(a)
        stop_server(b)


# A submitter process: submits through the Python API in a loop until a deadline and
# prints how many it submitted; any error (a "database is locked" too) is its exit code.
SUBMITTER = """
import sys, time
from taskyard import Yard
home, store, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
n, deadline = 0, time.monotonic() + seconds
with Yard(home, store=store) as y:
    while time.monotonic() < deadline:
        y.submit(["true"])
        n += 1
print(n)
"""


def test_servers_and_submitters_contending_for_one_sqlite_file(tmp_path: Path) -> None:
    """RELIABILITY 6.4, scaled for CI: 3 servers and 4 submitting processes (plus the
    CLI) share one SQLite file for a few seconds. No writer gets "database is locked",
    every task runs exactly once, and every history is legal."""
    shared = tmp_path / "shared.db"
    env = dict(os.environ, TASKYARD_STORE=str(shared), TASKYARD_POLL_INTERVAL="0.2")
    servers = [server_process(tmp_path / f"s{n}", "--slots", "2", env=env) for n in range(3)]
    try:
        submitters = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(tmp_path / "c"),
                                        str(shared), "4"], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE) for _ in range(4)]
        cli = [subprocess.run([sys.executable, "-m", "taskyard", "--home", str(tmp_path / "c"),
                               "--store", str(shared), "submit", "--", "true"],
                              capture_output=True, timeout=60) for _ in range(5)]
        outputs = [p.communicate(timeout=120) for p in submitters]
        assert all(p.returncode == 0 for p in submitters), [err for _, err in outputs]
        assert all(r.returncode == 0 for r in cli), [r.stderr for r in cli]
        submitted = sum(int(out) for out, _ in outputs) + len(cli)
        with Yard(tmp_path / "c", store=str(shared)) as y:
            wait_for(lambda: len(y.list(status="succeeded")) == submitted, timeout=120,
                     message=f"all {submitted} tasks succeeded")
            tasks = y.list()
            assert len(tasks) == submitted
            for t in tasks[:: max(1, len(tasks) // 200)]:  # a sample: full histories
                assert len(y.attempts(t.id)) == 1, t
                assert [e.to_status for e in y.events(t.id)] == [
                    Status.QUEUED, Status.RUNNING, Status.SUCCEEDED], t
            owners = {y.attempts(t.id)[-1].owner for t in tasks[::25]}
        assert len(owners) >= 2, "the servers shared the work"
        db = sqlite3.connect(shared)
        try:  # every task: one attempt, three events (queued, running, succeeded)
            assert db.execute("SELECT count(*), count(DISTINCT task_id) FROM attempts"
                              ).fetchone() == (submitted, submitted)
            assert db.execute("SELECT count(*) FROM events").fetchone() == (3 * submitted,)
        finally:
            db.close()
    finally:
        for s in servers:
            stop_server(s)
    for n in range(3):
        log = (tmp_path / f"s{n}" / "server.log").read_text()
        assert "locked" not in log and "Traceback" not in log, log[-2000:]


def _hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Another program holding the store's write lock for ``seconds`` (from now)."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)  # the lock is held this long on purpose: the fault itself
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_server_waiting_for_the_write_lock_keeps_supervising(home: Path) -> None:
    """While another program holds the write lock (longer than the server waits for
    it), the server still reads its tasks' pipes (they are not blocked), still enforces
    timeouts, and carries on once the lock is released."""
    with running_server(home, "--slots", "2", "--kill-grace", "0.5"), Yard(home) as y:
        writer = y.submit(["sh", "-c", "for i in $(seq 40); do head -c 70000 /dev/zero;"
                                       " date +%s.%N >&2; sleep 0.05; done"])
        late = y.submit(["sleep", "30"], timeout=1)
        wait_for(lambda: y.get(late.id).pid and y.get(writer.id).pid, message="both run")
        pid = y.get(late.id).pid
        assert pid is not None
        released = _hold_write_lock(home / "taskyard.db", 3.0)
        try:
            wait_for(lambda: not process_alive(pid), timeout=2.5, message="timeout enforced while"
                     " the store was locked")
        finally:
            released.join()
        done = y.wait(late.id, timeout=10)
        assert done is not None and done.reason is Reason.TIMEOUT
        finished = y.wait(writer.id, timeout=20)
        assert finished is not None and finished.status is Status.SUCCEEDED
        stamps = [float(t) for t in y.logs(writer.id, stream="stderr").data.split()]
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert max(gaps) < 1.0  # never blocked
        assert len(y.logs(writer.id).data) == 40 * 70000



def test_a_lock_that_stalls_every_server_gets_none_fenced(tmp_path: Path) -> None:
    """Two servers on one SQLite file, its write lock held elsewhere past their lease:
    both were silent for the same reason, so neither takes the other for dead."""
    _, a, b = _two_servers(tmp_path)
    shared = tmp_path / "shared.db"
    try:
        with Yard(tmp_path / "a", store=str(shared)) as y:
            tasks = [y.submit(["sleep", "999"]).id for _ in range(2)]
            wait_for(lambda: all(y.get(i).pid for i in tasks), message="both running")
            _hold_write_lock(shared, 2 * 2 + 1).join()  # past the 2 s lease
            time.sleep(3)  # a lease and more for a wrong verdict to show (none may come)
            assert all(y.get(i).status is Status.RUNNING for i in tasks)
            assert a.poll() is None and b.poll() is None
            for i in tasks:
                y.kill(i)
    finally:
        stop_server(a)
        stop_server(b)
    for side in ("a", "b"):
        assert "fenced" not in (tmp_path / side / "server.log").read_text()
