"""Tracked tasks with a real server and real owner processes: a shell script through the
CLI, a Python program through ``Yard.track``; the owner killed (``crashed`` within a
heartbeat), steered with signals and config, killed when killable, and a kill refused
when the owner never reads it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from taskyard import Yard, ops
from taskyard.errors import InvalidInput, StaleAttempt, TransitionError
from taskyard.lifecycle import Reason, Status
from taskyard.testing import cli, running_server, wait_for

HEARTBEAT = 0.2  #: seconds between the test server's heartbeats

OWNER = textwrap.dedent("""
    import json, sys, time
    from taskyard import Yard
    y = Yard(sys.argv[1])
    rec = y.track(name="owner", meta={"by": "py"}, killable=sys.argv[2] == "killable")
    print(rec.id, flush=True)
    seen = []
    for line in sys.stdin:                 # each line from the test: one look
        what = line.strip()
        if what == "signals":
            print(json.dumps([s["name"] for s in rec.signals()]), flush=True)
        elif what == "config":
            print(json.dumps(rec.config), flush=True)
        elif what == "stop?":
            print(json.dumps(rec.should_stop()), flush=True)
        elif what == "stop":
            rec.stop()
            print("stopped", flush=True)
        elif what == "wait":
            time.sleep(3600)
""")


def _owner(home: Path, killable: bool = False) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(home),
                             "killable" if killable else "plain"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _done(proc: subprocess.Popen[str]) -> None:
    """Kill the owner (if it still runs) and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def _ask(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(what + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def _server(home: Path) -> AbstractContextManager[object]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "taskyard.toml").write_text(f"[server]\nheartbeat_interval = {HEARTBEAT}\n"
                                        "lease = 2\n")
    return running_server(home)


def test_a_shell_script_reports_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # $TY unquoted: the shell runs it without a function or a subshell of its own, so
    # the CLI's parent, its owner by default, is this script's shell
    script = textwrap.dedent(f"""
        set -e
        TY="{sys.executable} -m taskyard --home {home}"
        id=$($TY track start --name nightly --meta '{{"src": "db"}}')
        $TY track progress "$id" 1 4 dumping
        $TY track progress "$id" 4 4 done
        $TY track finish "$id" >/dev/null
        id2=$($TY track start --name broken)
        $TY track fail "$id2" "no space left" >/dev/null
        echo "$id $id2"
    """)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ok, bad = (int(n) for n in out.stdout.split())
    with Yard(home) as y:
        task = y.get(ok)
        assert (task.status, task.kind, task.meta) == (Status.SUCCEEDED, "tracked",
                                                        {"src": "db"})
        assert (task.progress.done, task.progress.total, task.progress.message) == (
            4, 4, "done")
        failed = y.get(bad)
        assert (failed.status, failed.reason, failed.error) == (
            Status.FAILED, Reason.REPORTED, "no space left")
    shown = json.loads(cli(home, "show", str(ok), "--json", check=True).stdout)
    assert shown["kind"] == "tracked"
    listed = cli(home, "ls", check=True).stdout.decode()
    assert "(tracked)" in listed


def test_a_call_from_another_process_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = cli(home, "track", "start", "--name", "mine", check=True)  # owner: this test
    task_id = started.stdout.decode().strip()
    other = subprocess.run(["sh", "-c", f'"{sys.executable}" -m taskyard --home "{home}"'
                            f" track finish {task_id}"], capture_output=True, timeout=60)
    assert other.returncode == 2
    err = other.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "is not the owner of tracked task" in err[0]
    assert cli(home, "track", "finish", task_id).returncode == 0  # from its owner
    bad = cli(home, "track", "start", "--meta", "[1]")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1


def test_progress_over_its_total_is_refused_by_the_cli_and_the_api(tmp_path: Path) -> None:
    """DONE > TOTAL is bad input everywhere progress is reported (the CLI's ``track
    progress`` and ``progress``, ``rec.progress``, ``ctx.progress``: one check), naming
    DONE; nothing is written."""
    home = tmp_path / "home"
    task_id = cli(home, "track", "start", "--name", "over", check=True).stdout.decode().strip()
    assert cli(home, "track", "progress", task_id, "3", "10").returncode == 0
    over = cli(home, "track", "progress", task_id, "12", "10", "too far")
    assert over.returncode == 2
    err = over.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "done (12) is over its total (10)" in err[0], err
    with Yard(home) as y:
        assert (y.get(int(task_id)).progress.done, y.get(int(task_id)).progress.total) == (3, 10)
        rec = y.track(name="over-api")
        with pytest.raises(InvalidInput, match="over its total") as caught:
            rec.progress(5, 4)
        assert caught.value.field == "done"
        rec.progress(4, 4)
        rec.finish()
        assert y.get(rec.id).progress.done == 4


def test_a_dead_owner_is_recorded_crashed_within_a_heartbeat(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _server(home), Yard(home) as y:
        proc, task_id = _owner(home)
        assert y.is_live(task_id)
        _done(proc)
        task = wait_for(lambda: (t := y.get(task_id)).terminal and t, timeout=5.0,
                        message="the tracked task recorded crashed")
        assert (task.status, task.reason) == (Status.FAILED, Reason.CRASHED)
        assert "ended without finishing" in (task.error or "")
        assert not y.is_live(task_id)


def test_the_owner_is_steered_with_signals_config_and_a_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Yard(home) as y:
        proc, task_id = _owner(home)
        try:
            y.signal(task_id, "reload", {"full": True})
            y.set_config(task_id, {"batch": 50})
            wait_for(lambda: _ask(proc, "config") == '{"batch": 50}', timeout=5.0)
            assert _ask(proc, "signals") == '["reload"]'
            killed: list[BaseException | None] = []

            def kill() -> None:
                try:
                    ops.kill(y._store, task_id, timeout=10.0)
                    killed.append(None)
                except BaseException as exc:
                    killed.append(exc)

            import threading

            thread = threading.Thread(target=kill)
            thread.start()
            wait_for(lambda: _ask(proc, "stop?") == "true", timeout=5.0)
            thread.join(10)
            assert killed == [None]  # the owner read it: the kill is answered
            assert _ask(proc, "stop") == "stopped"
            task = y.get(task_id)
            assert (task.status, task.reason) == (Status.STOPPED, Reason.KILLED)
        finally:
            _done(proc)


def test_a_kill_the_owner_never_reads_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Yard(home) as y:
        proc, task_id = _owner(home)
        try:
            with pytest.raises(TransitionError, match="did not read the stop request"):
                ops.kill(y._store, task_id, timeout=0.5)
            assert y.get(task_id).status is Status.RUNNING
            out = cli(home, "kill", str(task_id), "--timeout", "0.5")
            assert out.returncode == 2
            assert "killable" in out.stderr.decode()
        finally:
            _done(proc)


def test_a_killable_owner_gets_the_signal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _server(home), Yard(home) as y:
        proc, task_id = _owner(home, killable=True)
        try:
            task = y.kill(task_id)
            assert (task.status, task.reason) == (Status.STOPPED, Reason.KILLED)
            assert proc.wait(10) == -signal.SIGTERM
        finally:
            _done(proc)


def test_a_tracked_task_emits_messages_its_readers_see(home: Path) -> None:
    with Yard(home) as y:
        rec = y.track(name="import")
        assert rec.emit({"rows": 1}) == 0 and rec.emit("two") == 1
        read = y.messages(rec.id)
        assert [m.value for m in read.items] == [{"rows": 1}, "two"] and not read.finished
        rec.finish()
        assert y.messages(rec.id, since=1).finished
        with pytest.raises(StaleAttempt):
            rec.emit({"late": True})
