"""Real server process, real children, real signals."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.testing import instance_of, pids_with_tag, running_server, stop_server, wait_for


@pytest.fixture
def yard_home(home: Path) -> Path:
    return home


@pytest.fixture
def yard(home: Path):
    with running_server(home, "--slots", "4", "--kill-grace", "2"), Yard(home) as y:
        yield y


def _running(y: Yard, task_id: int) -> bool:
    t = y.get(task_id)
    return t.status is Status.RUNNING and t.pid is not None


def test_echo_succeeds_and_output_is_stored(yard: Yard) -> None:
    t = yard.submit(["echo", "hello"])
    done = yard.wait(t.id, timeout=10)
    assert done is not None and done.status is Status.SUCCEEDED
    assert yard.logs(t.id).data == b"hello\n"
    assert [e.to_status for e in yard.events(t.id)] == [Status.QUEUED, Status.RUNNING,
                                                        Status.SUCCEEDED]


def test_pids_are_recorded_for_short_and_long_attempts(yard: Yard) -> None:
    """A short attempt gets its pid with its outcome; a long one within a flush."""
    short = yard.submit(["sh", "-c", "echo $$"])
    done = yard.wait(short.id, timeout=10)
    assert done is not None and done.status is Status.SUCCEEDED
    pid = int(yard.logs(short.id).data)
    assert done.pid == pid and yard.attempts(short.id)[-1].pid == pid
    long = yard.submit(["sh", "-c", "echo $$; exec sleep 999"])
    wait_for(lambda: yard.logs(long.id).data != b"", message="the shell printed its pid")
    pid = int(yard.logs(long.id).data)
    wait_for(lambda: yard.get(long.id).pid == pid and yard.attempts(long.id)[-1].pid == pid,
             message="the pid of a running attempt is recorded")
    yard.kill(long.id, signal.SIGKILL)
    assert yard.wait(long.id, timeout=10) is not None


def test_group_kill_leaves_no_survivor(yard: Yard, yard_home: Path) -> None:
    t = yard.submit(["sh", "-c", "sleep 999 & sleep 999"])
    wait_for(lambda: _running(yard, t.id))
    wait_for(lambda: len(pids_with_tag(instance_of(yard_home))) >= 2, message="both sleeps started")
    yard.kill(t.id)
    done = yard.wait(t.id, timeout=10)
    assert done is not None and done.status is Status.STOPPED and done.reason is Reason.KILLED
    wait_for(lambda: not pids_with_tag(instance_of(yard_home)), timeout=5, message="no survivor")


def test_pause_then_kill_terminates(yard: Yard) -> None:
    t = yard.submit(["sleep", "999"])
    wait_for(lambda: _running(yard, t.id))
    assert yard.pause(t.id).status is Status.PAUSED
    yard.kill(t.id)
    done = yard.wait(t.id, timeout=5)
    assert done is not None and done.status is Status.STOPPED and done.signal == signal.SIGTERM


def _state(pid: int) -> str:
    """The process's state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_pause_asked_again_is_done_and_the_store_follows_the_process(
        yard: Yard, yard_home: Path) -> None:
    """Two pauses at once are both done (the second finds the group stopped and the
    store saying so). A pause whose store write was lost (injected here: the row set
    back to running while the group stays stopped, as a lost connection leaves it) is
    written when it is asked again, instead of being refused "already paused" and the
    store saying running of a stopped task for good; the same for resume."""
    import sqlite3

    from taskyard import ops

    t = yard.submit(["sleep", "999"])
    wait_for(lambda: _running(yard, t.id))
    pid = yard.get(t.id).pid
    assert pid is not None
    store = yard._store
    first = ops._apply(store, t.id, "pause", None, None, 0)  # both pending at once
    second = ops._apply(store, t.id, "pause", None, None, 0)
    for request in (first, second):
        wait_for(lambda r=request: store.get_request(r.id).state != "pending", timeout=30)
        assert store.get_request(request.id).state == "done", store.get_request(request.id)
    assert yard.get(t.id).status is Status.PAUSED and _state(pid) == "T"
    with sqlite3.connect(yard_home / "taskyard.db") as db:  # the lost write
        db.execute("UPDATE tasks SET status='running' WHERE id=?", (t.id,))
    assert yard.pause(t.id).status is Status.PAUSED and _state(pid) == "T"
    assert yard.resume(t.id).status is Status.RUNNING and _state(pid) != "T"
    with sqlite3.connect(yard_home / "taskyard.db") as db:
        db.execute("UPDATE tasks SET status='paused' WHERE id=?", (t.id,))
    assert yard.resume(t.id).status is Status.RUNNING and _state(pid) != "T"
    yard.kill(t.id)


def test_binary_output_round_trips_exactly(yard: Yard, tmp_path: Path) -> None:
    blob = os.urandom(3 * 1024 * 1024) + b"\xff\xfe\x00 invalid utf-8 \xc3\x28"
    src = tmp_path / "blob"
    src.write_bytes(blob)
    t = yard.submit(["cat", str(src)])
    assert yard.wait(t.id, timeout=20).status is Status.SUCCEEDED
    got, offset = b"", 0
    while True:
        read = yard.logs(t.id, offset=offset, limit=1024 * 1024)
        assert read.dropped is None
        got += read.data
        offset = read.next_offset
        if offset >= read.total:
            break
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(blob).hexdigest()


def test_nonexistent_program_fails_with_spawn(yard: Yard) -> None:
    t = yard.submit(["/no/such/program"])
    done = yard.wait(t.id, timeout=10)
    assert done is not None and done.status is Status.FAILED and done.reason is Reason.SPAWN
    assert "No such file" in (done.error or "")


def test_every_kind_of_spawn_error_fails_its_task_and_nothing_else(yard: Yard,
                                                                    tmp_path: Path) -> None:
    """A directory, a file without the execute bit, a program name not on PATH and an
    argument list over the kernel's limit: each task fails with reason spawn and the
    OS's words; a good task submitted after them still runs."""
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\necho hi\n")
    cases = [("Permission denied", [str(tmp_path)]),
             ("Permission denied", [str(plain)]),
             ("No such file", ["no-such-program-anywhere"]),
             ("Argument list too long", ["true", "x" * (256 * 1024)])]
    ids = [(words, yard.submit(argv).id) for words, argv in cases]
    good = yard.submit(["true"]).id
    for words, task_id in ids:
        done = yard.wait(task_id, timeout=10)
        assert done is not None and (done.status, done.reason) == (Status.FAILED,
                                                                   Reason.SPAWN), done
        assert words in (done.error or ""), done
        assert [e.to_status for e in yard.events(task_id)] == [
            Status.QUEUED, Status.RUNNING, Status.FAILED]
    done = yard.wait(good, timeout=10)
    assert done is not None and done.status is Status.SUCCEEDED


def test_exit_code_and_signal_are_recorded(yard: Yard) -> None:
    a = yard.submit(["sh", "-c", "exit 7"])
    b = yard.submit(["sh", "-c", "kill -SEGV $$"])
    ok = yard.submit(["true"])
    da, db = yard.wait(a.id, timeout=10), yard.wait(b.id, timeout=10)
    assert da.reason is Reason.EXIT and da.exit_code == 7
    done = yard.wait(ok.id, timeout=10)
    assert done is not None and (done.status, done.exit_code) == (Status.SUCCEEDED, 0)
    assert db.reason is Reason.SIGNAL and db.signal == signal.SIGSEGV


def test_term_escalates_to_kill_after_the_grace(yard: Yard) -> None:
    t = yard.submit(["sh", "-c", "trap '' TERM; echo ready; sleep 999"])
    wait_for(lambda: yard.logs(t.id).data == b"ready\n")
    yard.kill(t.id)
    done = yard.wait(t.id, timeout=10)
    assert done is not None and done.status is Status.STOPPED
    assert done.signal == signal.SIGKILL


def test_other_signals_are_delivered_to_the_group(yard: Yard) -> None:
    script = "trap 'echo got USR1; exit 0' USR1; echo ready; while :; do sleep 0.05; done"
    t = yard.submit(["sh", "-c", script])
    wait_for(lambda: yard.logs(t.id).data == b"ready\n")
    yard.kill(t.id, "USR1")
    done = yard.wait(t.id, timeout=10)
    assert done is not None and b"got USR1" in yard.logs(t.id).data
    assert done.status is Status.STOPPED and done.exit_code == 0


def test_leftovers_of_a_finished_task_are_killed(yard: Yard, yard_home: Path) -> None:
    t = yard.submit(["sh", "-c", "sleep 999 > /dev/null 2>&1 & echo started"])
    assert yard.wait(t.id, timeout=10).status is Status.SUCCEEDED
    wait_for(lambda: not pids_with_tag(instance_of(yard_home)), timeout=5, message="background sleep killed")


def test_output_is_bounded_with_the_true_count(home: Path) -> None:
    with running_server(home, "--output-tail-mib", "0.5"), Yard(home) as y:
        size = 5 * 1024 * 1024
        t = y.submit(["head", "-c", str(size), "/dev/urandom"])
        assert y.wait(t.id, timeout=30).status is Status.SUCCEEDED
        first = y.logs(t.id, limit=2 * 1024 * 1024)
        assert first.total == size and len(first.data) == 1024 * 1024 and first.dropped is None
        middle = y.logs(t.id, offset=2 * 1024 * 1024, limit=100)
        assert middle.dropped is not None and middle.dropped[0] == 2 * 1024 * 1024
        tail = y.logs(t.id, offset=middle.dropped[1])
        assert len(tail.data) >= 512 * 1024 and tail.next_offset == size


def test_follow_streams_until_the_task_ends(yard: Yard, home: Path) -> None:
    from taskyard.testing import cli

    t = yard.submit(["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done"])
    result = cli(home, "logs", str(t.id), "--follow", timeout=20)
    assert result.returncode == 0
    assert result.stdout == b"line 1\nline 2\nline 3\n"


def test_timeout_kills_the_group_and_fails_the_task(yard: Yard, yard_home: Path) -> None:
    polite = yard.submit(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    stubborn = yard.submit(["sh", "-c", "trap '' TERM; sleep 30"], timeout=0.5)
    quick = yard.submit(["true"], timeout=30)
    for task_id, sig in ((polite.id, signal.SIGTERM), (stubborn.id, signal.SIGKILL)):
        done = yard.wait(task_id, timeout=15)
        assert done is not None and done.status is Status.FAILED
        assert done.reason is Reason.TIMEOUT and done.signal == sig
        assert "timeout of 0.5s" in (done.error or "")
    assert yard.wait(quick.id, timeout=10).status is Status.SUCCEEDED
    wait_for(lambda: not pids_with_tag(instance_of(yard_home)), timeout=5, message="no survivor")


def test_priority_and_delay(home: Path) -> None:
    with running_server(home, "--slots", "1"), Yard(home) as y:
        blocker = y.submit(["sleep", "0.5"])
        wait_for(lambda: _running(y, blocker.id))
        low = y.submit(["true"], priority=-1)
        plain = y.submit(["true"])
        high = y.submit(["true"], priority=10)
        later = y.submit(["true"], delay=1.0)
        assert later.status is Status.SCHEDULED
        done = [y.wait(t.id, timeout=15) for t in (low, plain, high, later)]
        assert all(t is not None and t.status is Status.SUCCEEDED for t in done)
        starts = {t.id: t.started_at for t in done if t is not None}
        assert starts[high.id] < starts[plain.id] < starts[low.id]
        assert starts[later.id] - later.created_at >= 1.0


def test_a_task_that_fails_twice_is_retried_until_it_succeeds(yard: Yard, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]'
    t = yard.submit(["sh", "-c", script], retries=3, retry_delay=0.1, backoff="fixed")
    done = wait_for(lambda: (x := yard.get(t.id)).terminal and x, timeout=20)
    assert done.status is Status.SUCCEEDED and done.retried == 2
    assert [a.status for a in yard.attempts(t.id)] == [Status.FAILED, Status.FAILED,
                                                      Status.SUCCEEDED]


def test_after_runs_in_order_and_failure_propagates(yard: Yard) -> None:
    a = yard.submit(["sleep", "0.3"])
    b = yard.submit(["true"], after=[a.id])
    c = yard.submit(["true"], after=[a.id, b.id])
    bad = yard.submit(["false"])
    d = yard.submit(["true"], after=[bad.id])
    e = yard.submit(["true"], after=[d.id, a.id])
    done = {t.id: yard.wait(t.id, timeout=20) for t in (a, b, c, d, e)}
    assert all(t is not None for t in done.values())
    assert [done[t.id].status for t in (a, b, c)] == [Status.SUCCEEDED] * 3  # type: ignore[union-attr]
    assert done[a.id].finished_at <= done[b.id].started_at  # type: ignore[union-attr,operator]
    assert done[b.id].finished_at <= done[c.id].started_at  # type: ignore[union-attr,operator]
    for t in (d, e):
        assert (done[t.id].status, done[t.id].reason) == (  # type: ignore[union-attr]
            Status.FAILED, Reason.DEPENDENCY)


def test_a_dependent_starts_right_after_its_dependency(yard: Yard) -> None:
    first = yard.submit(["true"])
    second = yard.submit(["true"], after=[first.id])
    done = yard.wait(second.id, timeout=10)
    before = yard.get(first.id)
    assert done is not None and done.started_at is not None and before.finished_at is not None
    assert done.started_at - before.finished_at < 0.5  # not the 1 s poll interval


def test_a_retry_starts_after_its_delay_not_at_the_next_poll(yard: Yard) -> None:
    t = yard.submit(["false"], retries=1, retry_delay=0.1, backoff="fixed")
    wait_for(lambda: yard.get(t.id).retried == 1 and yard.get(t.id).terminal, timeout=10)
    first, second = yard.attempts(t.id)
    assert first.finished_at is not None
    assert second.started_at - first.finished_at < 0.6  # 0.1 s ±20 %, not the 1 s poll


def _max_overlap(y: Yard, ids: list[int]) -> int:
    """The most attempts of ``ids`` that were running at one moment."""
    edges = sorted(edge for i in ids for a in y.attempts(i) if a.finished_at is not None
                   for edge in ((a.started_at, 1), (a.finished_at, -1)))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_a_low_descriptor_limit_caps_the_slots_at_start(tmp_path: Path) -> None:
    """40 slots cannot fit in 96 file descriptors: the server says so and runs fewer
    tasks at once, and every task succeeds."""
    home = tmp_path / "home"
    home.mkdir()
    read_end, write_end = os.pipe()
    limited = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96));"
               " os.execv(sys.executable, [sys.executable, '-m', 'taskyard', *sys.argv[1:]])")
    with open(home / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", limited, "--home", str(home), "server", "start",
             "--foreground", "--slots", "40", "--no-web"], stdout=log, stderr=log, pass_fds=(write_end,),
            env=dict(os.environ, TASKYARD_READY_FD=str(write_end)))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        assert ready.read().strip() == b"ok"
    try:
        with Yard(home) as y:
            ids = [y.submit(["sleep", "0.2"]).id for _ in range(30)]
            for i in ids:
                done = y.wait(i, timeout=30)
                assert done is not None and done.status is Status.SUCCEEDED, done
            assert _max_overlap(y, ids) <= 10
    finally:
        stop_server(proc)
    assert "the limit (ulimit -n) is 96: running at most 10 task(s)" in (
        home / "server.log").read_text()


def test_running_out_of_descriptors_fails_one_task_not_the_server(home: Path) -> None:
    """The limit drops under a running server: the spawn that falls short fails its task
    (reason spawn, the OS error), the rest of that claim is given back, the server runs
    as many tasks as fit from then on, and it stays up."""
    with running_server(home, "--slots", "40") as proc, Yard(home) as y:
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        ids = [y.submit(["sleep", "0.3"]).id for _ in range(40)]
        ended = [y.wait(i, timeout=60) for i in ids]
        assert proc.poll() is None, "the server is still up"
        failed = [t for t in ended if t is None or t.status is not Status.SUCCEEDED]
        assert 1 <= len(failed) <= 3, failed
        for t in failed:
            assert t is not None and t.reason is Reason.SPAWN, t
            assert t.error is not None and "Too many open files" in t.error, t
        later = y.wait(y.submit(["true"]).id, timeout=10)
        assert later is not None and later.status is Status.SUCCEEDED, later
    assert "out of file descriptors (the limit is 64)" in (home / "server.log").read_text()


def _zombies_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state == "Z" and int(ppid) == pid:
                found.append(int(entry.name))
    return found


def test_many_tasks_leave_no_zombie_and_no_descriptor_behind(home: Path) -> None:
    """RELIABILITY 6.5, scaled: after 1,000 short tasks (some failing, some with output)
    the server has reaped every child and holds the descriptors it held before."""
    with running_server(home, "--slots", "4") as proc, Yard(home) as y:
        y.wait(y.submit(["true"]).id, timeout=10)  # the store and sockets are open now
        fds = lambda: len(os.listdir(f"/proc/{proc.pid}/fd"))  # noqa: E731
        before = fds()
        kinds = (["true"], ["false"], ["sh", "-c", "echo out; echo err >&2"], ["/no/such"])
        ids = [y.submit(kinds[n % len(kinds)]).id for n in range(1000)]
        wait_for(lambda: y.get(ids[-1]).status.value in ("succeeded", "failed"), timeout=120)
        for i in ids:
            assert y.wait(i, timeout=30) is not None
        wait_for(lambda: abs(fds() - before) <= 5, timeout=5,
                 message=f"descriptors back to {before} (now {fds()})")
        assert _zombies_of(proc.pid) == []


def test_a_process_escaping_its_group_does_not_hold_the_task_open(
        yard: Yard, yard_home: Path, tmp_path: Path) -> None:
    """A child that leaves the task's process group (setsid) and keeps its stdout open:
    the task still ends when its leader exits (its pipes are given up after a grace of
    2 s), and the server log says what happened."""
    marker = tmp_path / "escaped"
    # The leader exits only once the child is in its own session (else the group kill
    # at the leader's exit would still reach it).
    t = yard.submit(["sh", "-c", f"setsid sh -c 'echo x > {marker}; exec sleep 30' &"
                     f" while [ ! -s {marker} ]; do sleep 0.01; done; echo started"])
    try:
        done = yard.wait(t.id, timeout=10)
        assert done is not None and done.status is Status.SUCCEEDED, done
        assert yard.logs(t.id).data == b"started\n"
        log = (yard_home / "server.log").read_text()
        assert "a process escaped with setsid?" in log, log[-2000:]
    finally:
        for pid in pids_with_tag(instance_of(yard_home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_working_directory_is_looked_up_for_every_task(yard: Yard, tmp_path: Path) -> None:
    """A directory removed and made again since the last task ran there is the new one;
    a removed one is a spawn failure (not the server's stale working directory)."""
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    first = yard.wait(yard.submit(["true"], cwd=str(work)).id, timeout=10)
    assert first is not None and first.status is Status.SUCCEEDED
    shutil.rmtree(work)
    work.mkdir()
    (work / "new-file").write_text("")
    again = yard.submit(["ls"], cwd=str(work))
    assert yard.wait(again.id, timeout=10) is not None
    assert yard.logs(again.id).data == b"new-file\n"
    shutil.rmtree(work)
    gone = yard.wait(yard.submit(["true"], cwd=str(work)).id, timeout=10)
    assert gone is not None and (gone.status, gone.reason) == (Status.FAILED, Reason.SPAWN)
    assert "No such file" in (gone.error or "")


def test_stdin_sent_is_not_kept_and_an_unread_backlog_is_bounded(yard: Yard) -> None:
    """What send wrote leaves the store once the server has it; a task that does not
    read gets at most STDIN_BACKLOG held for it, then sends are refused."""
    import sqlite3

    from taskyard.errors import TransitionError

    t = yard.submit(["sleep", "300"], stdin_open=True)
    wait_for(lambda: yard.get(t.id).pid, message="started")
    yard.send(t.id, b"x" * (40 << 20))
    with pytest.raises(TransitionError, match="has not read"):
        yard.send(t.id, b"y" * (40 << 20))
    db = sqlite3.connect(yard.settings.db_path)
    try:
        rows = db.execute("SELECT state, payload IS NULL FROM requests WHERE task_id=?"
                          " ORDER BY id", (t.id,)).fetchall()
    finally:
        db.close()
    assert rows == [("done", 1), ("rejected", 1)]
    yard.kill(t.id)
