"""Crashes and server lifecycle: kill -9, concurrent starts, stale pidfiles, store
failures, warm and immediate stops. Real server processes, real children, real
signals; every wait is on a condition (``wait_for``), never on a bare sleep."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Task, Yard
from taskyard.lifecycle import TERMINAL, is_legal
from taskyard.testing import (
    cli,
    pids_with_tag,
    process_alive,
    server_process,
    stop_server,
    wait_for,
)

UNFINISHED = [s.value for s in Status if s not in TERMINAL]


# -- helpers ---------------------------------------------------------------------


def _running(y: Yard, task_id: int) -> bool:
    t = y.get(task_id)
    return t.status is Status.RUNNING and t.pid is not None


def _instances(home: Path) -> list[str]:
    """Every server instance that ever registered in this home (read straight from the file)."""
    with contextlib.closing(sqlite3.connect(home / "taskyard.db")) as db:
        return [row[0] for row in db.execute("SELECT id FROM instances")]


def _tagged(instances: list[str]) -> list[int]:
    """Live processes tagged by one of ``instances`` (scoped: other suites may run too)."""
    return [pid for i in instances for pid in pids_with_tag(f"{i}.")]


def _integrity(home: Path) -> str:
    with contextlib.closing(sqlite3.connect(home / "taskyard.db")) as db:
        return "\n".join(row[0] for row in db.execute("PRAGMA integrity_check"))


def _cmdline(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if stat[stat.rfind(")") + 2] == "Z":
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _server_pids(home: Path) -> list[int]:
    """Live ``taskyard --home HOME server start --foreground`` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(entry.name)
        if args and str(home) in args and "--foreground" in args and "start" in args:
            found.append(int(entry.name))
    return found


def _stop_cleanly(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """One SIGTERM (a warm stop) and a clean exit. Not ``stop_server``: its second
    SIGTERM may land while the server is already exiting, which ends it with -15."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout) == 0


@pytest.fixture
def daemons(home: Path) -> Iterator[None]:
    """Stops whatever daemonized server a test started on ``home``, even on failure."""
    yield
    if cli(home, "server", "status").returncode == 0:
        cli(home, "server", "stop", "--now", timeout=30)
    for pid in _server_pids(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _launch_starts(home: Path, count: int, env: dict[str, str] | None = None
                   ) -> list[tuple[int, str, str]]:
    """``count`` daemonizing ``server start`` invocations, all launched before any is
    waited on; returns (exit code, stdout, stderr) of each."""
    procs = [subprocess.Popen([sys.executable, "-m", "taskyard", "--home", str(home), "server",
                               "start"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
             for _ in range(count)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        results.append((p.returncode, out.decode(errors="replace"), err.decode(errors="replace")))
    return results


# -- 1. kill -9 torture ----------------------------------------------------------

N_TASKS = 200
KILLS = 5
SLOTS = "4"

# $1 marker dir, $2 seconds to sleep, $3 exit code. One marker file per task.
PROBE = """f="$1/$TASKYARD_TASK_ID"
echo "start $TASKYARD_TASK_ID $TASKYARD_ATTEMPT $$" >> "$f"
sleep "$2"
echo "end $TASKYARD_TASK_ID $TASKYARD_ATTEMPT $$ $3" >> "$f"
exit "$3"
"""


def _plan(i: int) -> tuple[str, int]:
    """Sleep 0-0.30 s varying with the task; every tenth task exits 3."""
    return f"{(i * 37) % 31 / 100:.2f}", 3 if i % 10 == 7 else 0


def _marker(markers: Path, task_id: int) -> tuple[list[list[str]], list[list[str]]]:
    try:
        lines = (markers / str(task_id)).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    words = [line.split() for line in lines if line.strip()]
    return [w for w in words if w[0] == "start"], [w for w in words if w[0] == "end"]


def _check_history(y: Yard, task: Task) -> list[str]:
    """Events form a chain of legal transitions ending in the task's status; attempt
    epochs strictly increase and none ran more than once (nobody restarted anything)."""
    problems = [] if task.terminal else [f"left {task.status}"]
    before: Status | None = None
    for e in y.events(task.id):
        if e.from_status is not before or not is_legal(e.from_status, e.to_status):
            problems.append(f"event {e.from_status}->{e.to_status} after {before}")
        before = e.to_status
    if before is not task.status:
        problems.append(f"last event {before}, status {task.status}")
    epochs = [a.epoch for a in y.attempts(task.id)]
    if any(b <= a for a, b in zip(epochs, epochs[1:], strict=False)):
        problems.append(f"epochs not increasing: {epochs}")
    if len(epochs) > 1:
        problems.append(f"{len(epochs)} attempts: ran again after a crash")
    return problems


def _check_marker(y: Yard, task: Task, code: int, crashed: set[int], markers: Path
                  ) -> list[str]:
    """The outcome agrees with what the task's process wrote."""
    starts, ends = _marker(markers, task.id)
    problems = []
    if len(starts) > 1 or len(ends) > 1:
        problems.append(f"ran more than once: {starts} {ends}")
    attempts = y.attempts(task.id)
    if starts and attempts:
        last = attempts[-1]
        if starts[0][2] != str(last.epoch) or (last.pid is not None
                                               and starts[0][3] != str(last.pid)):
            problems.append(f"marker {starts[0]} does not match attempt {last}")
    status, reason = task.status, task.reason
    if task.id in crashed:
        if (status, reason) != (Status.FAILED, Reason.CRASHED):
            problems.append(f"running at a kill but ended {status}/{reason}")
    elif status is Status.SUCCEEDED:
        if code != 0 or len(ends) != 1:
            problems.append(f"succeeded but expected exit {code}, end lines {ends}")
    elif (status, reason) == (Status.FAILED, Reason.EXIT):
        if code == 0 or task.exit_code != code or len(ends) != 1:
            problems.append(f"failed exit {task.exit_code}, expected {code}, end lines {ends}")
    else:
        problems.append(f"ended {status}/{reason} though no kill caught it running")
    return problems


def test_kill_9_torture_loses_nothing_and_runs_nothing_twice(home: Path, tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    markers = tmp_path / "markers"
    markers.mkdir()
    crashed: set[int] = set()  # tasks the store had running/paused when a server was killed
    with Yard(home) as y:
        expected: dict[int, int] = {}
        for i in range(N_TASKS):
            sleep, code = _plan(i)
            t = y.submit(["sh", "-c", PROBE, "probe", str(markers), sleep, str(code)])
            expected[t.id] = code
        proc = server_process(home, "--slots", SLOTS)
        try:
            for _ in range(KILLS):
                wait_for(lambda: y.list(status="running"), timeout=20, message="tasks running")
                time.sleep(rng.uniform(0.0, 0.4))  # a random moment, not synchronisation
                proc.kill()
                proc.wait()
                # The server is dead: this is exactly what it left running.
                crashed |= {t.id for t in y.list(status=["running", "paused"])}
                proc = server_process(home, "--slots", SLOTS)
            wait_for(lambda: not y.list(status=UNFINISHED), timeout=60, message="queue drained")
            _stop_cleanly(proc)
        finally:
            stop_server(proc)

        tasks = {t.id: t for t in y.list()}
        assert sorted(tasks) == sorted(expected), "tasks were lost or invented"
        problems = []
        for task_id, code in expected.items():
            task = tasks[task_id]
            for p in _check_history(y, task) + _check_marker(y, task, code, crashed, markers):
                problems.append(f"task {task_id}: {p}")
        assert not problems, f"seed {seed}:\n" + "\n".join(problems[:40])

    assert crashed, f"seed {seed}: no kill caught a task running; the test proved nothing"
    assert not _tagged(_instances(home)), "a task process outlived its crash"
    assert _integrity(home) == "ok"


# -- 2. concurrent starts --------------------------------------------------------


def test_ten_concurrent_starts_leave_exactly_one_server(home: Path, daemons: None) -> None:
    results = _launch_starts(home, 10)
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1, results
    assert "server started" in winners[0][1]
    assert len(losers) == 9
    for _, _, err in losers:
        assert err.startswith("taskyard: error: ") and "already running" in err, err

    status = cli(home, "server", "status", "--json")
    assert status.returncode == 0, status
    pid = json.loads(status.stdout)["pid"]
    assert _server_pids(home) == [pid]

    stop = cli(home, "server", "stop")
    assert stop.returncode == 0 and b"server stopped" in stop.stdout, stop
    assert cli(home, "server", "status").returncode == 3
    wait_for(lambda: not _server_pids(home), timeout=5, message="server process gone")


# A sitecustomize for the server processes of a few tests below; it acts only in
# the server half of a start (the only process given TASKYARD_READY_FD).
# CRASHTEST_START_DELAY=S: sleep S seconds first, so that every daemonizing start's
#   "is one running?" check passes before any of them takes the lock.
# CRASHTEST_PROBE_PIDFILE=P: at the server's first exclusive flock, a client's probe
#   (server_running: a shared flock on P) is in flight; it ends 50 ms later.
# CRASHTEST_REGISTER_DELAY=S, CRASHTEST_IN_WINDOW=F: once the pidfile is written but
#   before the instance is registered (procs.boot_id is called in between), create F
#   and sleep S seconds: a slow first open of the store.
_HOOK = """import fcntl, os, threading, time
if os.environ.get("TASKYARD_READY_FD"):
    if os.environ.get("CRASHTEST_START_DELAY"):
        time.sleep(float(os.environ["CRASHTEST_START_DELAY"]))
    if os.environ.get("CRASHTEST_PROBE_PIDFILE"):
        _flock, _probed = fcntl.flock, []

        def _probing_flock(fd, operation):
            if operation & fcntl.LOCK_EX and not _probed:
                probe = os.open(os.environ["CRASHTEST_PROBE_PIDFILE"], os.O_RDONLY)
                _flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
                _probed.append(threading.Timer(0.05, os.close, (probe,)))
                _probed[0].start()
            return _flock(fd, operation)

        fcntl.flock = _probing_flock
    if os.environ.get("CRASHTEST_REGISTER_DELAY"):
        import taskyard.server.procs as _procs

        _boot_id = _procs.boot_id

        def _slow_boot_id():
            open(os.environ["CRASHTEST_IN_WINDOW"], "w").close()
            time.sleep(float(os.environ["CRASHTEST_REGISTER_DELAY"]))
            return _boot_id()

        _procs.boot_id = _slow_boot_id
"""


def _hooked_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HOOK)
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, **extra)


def test_starts_that_all_pass_the_check_still_leave_one_server(home: Path, tmp_path: Path,
                                                                daemons: None) -> None:
    """The worst case of concurrent starts, made deterministic: all ten daemons race for
    the lock; the nine losers must still say why (not "the server exited with code 1")."""
    env = _hooked_env(tmp_path, CRASHTEST_START_DELAY="1.0")
    results = _launch_starts(home, 10, env)
    assert [r[0] for r in results].count(0) == 1, results
    wait_for(lambda: len(_server_pids(home)) == 1, timeout=5, message="one server left")
    for code, _, err in results:
        if code != 0:
            assert "already running" in err, err
    assert cli(home, "server", "stop").returncode == 0
    assert cli(home, "server", "status").returncode == 3


def test_a_status_probe_never_makes_a_start_fail(home: Path, tmp_path: Path) -> None:
    """``server status`` probes the pidfile with a shared flock for a moment; a start
    that meets such a probe must wait it out, not fail with "already running"."""
    env = _hooked_env(tmp_path, CRASHTEST_PROBE_PIDFILE=str(home / "server.pid"))
    proc = server_process(home, env=env)
    try:
        _stop_cleanly(proc)
    finally:
        stop_server(proc)


def test_a_stop_during_startup_is_not_lost(home: Path, tmp_path: Path, daemons: None) -> None:
    in_window = tmp_path / "in-window"
    env = _hooked_env(tmp_path, CRASHTEST_REGISTER_DELAY="1.0",
                      CRASHTEST_IN_WINDOW=str(in_window))
    start = subprocess.Popen([sys.executable, "-m", "taskyard", "--home", str(home), "server",
                              "start"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:
        wait_for(in_window.exists, timeout=10, message="server between pidfile and register")
        stop = cli(home, "server", "stop", timeout=6)
        assert stop.returncode == 0, stop  # waits for the server to finish starting
        assert cli(home, "server", "status").returncode == 3
    finally:
        start.communicate(timeout=30)


# -- 3. stale pidfile --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["live-non-server", "dead", "garbage"])
def test_stale_pidfile_never_blocks_a_start(home: Path, kind: str, daemons: None) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        if kind == "live-non-server":
            content = f"{bystander.pid} 0123456789ab\n"
        elif kind == "dead":
            gone = subprocess.Popen(["true"])
            gone.wait()
            content = f"{gone.pid} 0123456789ab\n"
        else:
            content = "not a pid\n"
        (home / "server.pid").write_text(content)

        started = cli(home, "server", "start")
        assert started.returncode == 0 and b"server started" in started.stdout, started
        status = cli(home, "server", "status", "--json")
        assert status.returncode == 0, status
        pid = json.loads(status.stdout)["pid"]
        assert _server_pids(home) == [pid]
        assert (home / "server.pid").read_text().split()[0] == str(pid)
        assert bystander.poll() is None, "the pid named in a stale pidfile was signalled"

        assert cli(home, "server", "stop").returncode == 0
        assert cli(home, "server", "status").returncode == 3
    finally:
        bystander.kill()
        bystander.wait()


# -- 4. a failed store write -------------------------------------------------------


def test_failed_store_write_stops_the_server_cleanly(home: Path) -> None:
    with Yard(home) as y:
        ids = [y.submit(["sleep", "30"]).id for _ in range(3)]
        # The first writes (register, the finish hook settings, heartbeat, cron lease,
        # claim: spawns 3, record pids) go through; the next one fails.
        env = dict(os.environ, TASKYARD_FAULT="store-write-fail-after:7")
        proc = server_process(home, "--slots", "3", env=env)
        try:
            code = proc.wait(timeout=20)
        finally:
            stop_server(proc)
        assert code != 0
        log = (home / "server.log").read_text()
        assert "store write failed" in log and "injected write failure" in log, log

        # The store still says running, with pids: the test really had live tasks.
        tasks = [y.get(i) for i in ids]
        assert all(t.status is Status.RUNNING and t.pid is not None for t in tasks), tasks
        owners = _instances(home)
        wait_for(lambda: not _tagged(owners), timeout=5, message="task processes killed")

        with_restart = server_process(home, "--slots", "3")
        try:
            for i in ids:
                t = y.get(i)
                assert (t.status, t.reason) == (Status.FAILED, Reason.CRASHED), t
            assert not y.list(status=["running", "paused"])
            _stop_cleanly(with_restart)
        finally:
            stop_server(with_restart)
    assert _integrity(home) == "ok"


# -- 5. server death -----------------------------------------------------------------


def test_server_death_leaves_nothing_running_forever(home: Path) -> None:
    with Yard(home) as y:
        paused = y.submit(["sleep", "30"]).id
        plain = y.submit(["sleep", "30"]).id
        # Its background sleep leaves the task's process group: found by its tag alone.
        escaper = y.submit(["sh", "-c", "setsid sleep 30 & exec sleep 30"]).id
        ids = [paused, plain, escaper]
        # A lease far longer than a restart takes on a loaded machine: what is recovered
        # within half of it was recovered at boot, not when the dead owner's lease ran out
        env = dict(os.environ, TASKYARD_LEASE="60")
        proc = server_process(home, "--slots", "4", env=env)
        try:
            wait_for(lambda: all(_running(y, i) for i in ids), message="all running")
            assert y.pause(paused).status is Status.PAUSED
            owner = y.attempts(paused)[0].owner
            assert owner is not None
            wait_for(lambda: len(pids_with_tag(f"{owner}.")) == 4, message="4 processes")
            escaped = set(pids_with_tag(f"{owner}.")) - {y.get(i).pid for i in ids}
            proc.kill()
            proc.wait()
            # The running ones are orphaned, not dead: the new server has to find and kill
            # them. (The paused one's group became an orphaned group with a stopped member,
            # so the kernel sent it SIGHUP + SIGCONT: plain sleep dies of that.)
            survivors = set(pids_with_tag(f"{owner}."))
            assert {y.get(plain).pid, y.get(escaper).pid} | escaped <= survivors

            began = time.monotonic()
            proc = server_process(home, "--slots", "4", env=env)
            wait_for(lambda: all(y.get(i).terminal for i in ids), timeout=30,
                     message="old tasks recorded")
            wait_for(lambda: not pids_with_tag(f"{owner}."), timeout=30,
                     message="old processes gone")
            assert time.monotonic() - began < 30, "recovered at boot, not at the lease's end"
            for i in ids:
                t = y.get(i)
                assert (t.status, t.reason) == (Status.FAILED, Reason.CRASHED), t
                [attempt] = y.attempts(i)
                assert attempt.status is Status.FAILED and attempt.reason is Reason.CRASHED
                assert attempt.finished_at is not None
            assert [e.to_status for e in y.events(paused)] == [
                Status.QUEUED, Status.RUNNING, Status.PAUSED, Status.FAILED]
            _stop_cleanly(proc)
        finally:
            stop_server(proc)


# -- 6. stopping the server ------------------------------------------------------------


def test_warm_stop_lets_running_tasks_finish_and_starts_nothing(home: Path) -> None:
    proc = server_process(home, "--slots", "1")
    try:
        with Yard(home) as y:
            # sleep 2 rather than 1: the stop must reach the server while it runs
            # (a loaded machine can take most of a second to start the CLI).
            running = y.submit(["sleep", "2"])
            wait_for(lambda: _running(y, running.id), message="running")
            queued = [y.submit(["true"]).id for _ in range(2)]

            stop = cli(home, "server", "stop")
            assert stop.returncode == 0, stop
            assert b"waiting for 1 running task(s) to finish" in stop.stdout, stop
            assert b"server stopped" in stop.stdout
            assert proc.wait(timeout=10) == 0

            assert y.get(running.id).status is Status.SUCCEEDED
            for i in queued:
                t = y.get(i)
                assert t.status is Status.QUEUED and t.attempt == 0, t
                assert y.attempts(i) == []
            assert cli(home, "server", "status").returncode == 3
    finally:
        stop_server(proc)


def test_stop_now_records_running_tasks_stopped_by_shutdown(home: Path) -> None:
    # a grace far longer than a CLI run takes on a loaded machine
    proc = server_process(home, "--slots", "1", "--kill-grace", "60")
    try:
        with Yard(home) as y:
            running = y.submit(["sleep", "30"])
            wait_for(lambda: _running(y, running.id), message="running")
            waiting = y.submit(["sleep", "30"])
            owner = y.attempts(running.id)[0].owner
            assert len(pids_with_tag(f"{owner}.")) == 1

            began = time.monotonic()
            stop = cli(home, "server", "stop", "--now")
            assert stop.returncode == 0 and b"server stopped" in stop.stdout, stop
            assert time.monotonic() - began < 30, "TERM was enough; the grace was not needed"
            assert proc.wait(timeout=30) == 0

            t = y.get(running.id)
            assert (t.status, t.reason, t.signal) == (
                Status.STOPPED, Reason.SHUTDOWN, signal.SIGTERM), t
            assert y.get(waiting.id).status is Status.QUEUED
            assert not pids_with_tag(f"{owner}.")
    finally:
        stop_server(proc)


def test_commits_whose_answer_was_lost_are_read_back(home: Path, tmp_path: Path) -> None:
    """Every 5th write commits but reports the connection lost: the server waits it
    out, reads back what it committed, and no task is lost or started twice."""
    markers = tmp_path / "markers"
    with Yard(home) as y:
        ids = [y.submit(["sh", "-c", f'echo "$TASKYARD_TASK_ID" >> {markers}']).id
               for _ in range(60)]
        env = dict(os.environ, TASKYARD_FAULT="store-lost-answer-every:5")
        proc = server_process(home, "--slots", "2", env=env)
        try:
            for task_id in ids:
                done = y.wait(task_id, timeout=60)
                assert done is not None and done.status is Status.SUCCEEDED, done
                assert len(y.attempts(task_id)) == 1
            assert proc.poll() is None
        finally:
            stop_server(proc)
    runs = sorted(int(line) for line in markers.read_text().split())
    assert runs == ids, "each task ran exactly once"
    assert "store unavailable" in (home / "server.log").read_text()


@pytest.mark.parametrize(("victim", "left_running"), [("taskyard.db", False),
                                                      ("server.pid", True)])
def test_a_server_whose_home_files_are_removed_stops(tmp_path: Path, victim: str,
                                                     left_running: bool) -> None:
    """Its store file removed (its writes would go where nobody looks): it stops now,
    killing its tasks. Its pidfile removed (a second server could start, and `server
    stop` cannot find it): it stops once its tasks are done."""
    home = tmp_path / "home"
    proc = server_process(home, "--slots", "1")
    try:
        with Yard(home) as y:
            task = y.submit(["sleep", "1.5" if left_running else "300"])
            pid = wait_for(lambda: y.get(task.id).pid, message="started")
        (home / victim).unlink()
        assert proc.wait(20) == 0
        log = (home / "server.log").read_text()
        assert "was removed or replaced" in log, log
        if not left_running:
            wait_for(lambda: not process_alive(pid), timeout=10, message="its task killed")
    finally:
        stop_server(proc)

