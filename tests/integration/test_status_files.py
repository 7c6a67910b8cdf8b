"""Status files, the LongTask convention: QUE, RUN (locked while it runs), OK, ERR
<message>, then the start parameters; replaced atomically; gone with their task."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from pathlib import Path

from taskyard import Yard
from taskyard.testing import cli, server_process, stop_server, wait_for

REPORT = f"{sys.executable} -m taskyard report"


def _read(path: Path) -> list[str]:
    try:
        return path.read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []


def _locked(path: Path) -> bool:
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def _env(status: Path) -> dict[str, str]:
    return dict(os.environ, TASKYARD_STATUS_DIR=str(status),
                TASKYARD_STATUS_FILE_ENV="MGR_LT_PID", TASKYARD_HEARTBEAT_INTERVAL="0.2",
                TASKYARD_LEASE="2")


def test_every_state_of_a_task_in_its_status_file(home: Path, tmp_path: Path) -> None:
    status = tmp_path / "status"
    with Yard(home) as y:
        queued = y.submit(["sh", "-c", "echo \"$TASKYARD_STATUS_FILE $MGR_LT_PID\"; sleep 30"])
        proc = server_process(home, "--slots", "2", env=_env(status))
        try:
            path = status / str(queued.id)
            wait_for(lambda: _read(path)[:1] == ["RUN"], message="RUN")
            assert _read(path)[1:] == ["sh", "-c",
                                       "echo \"$TASKYARD_STATUS_FILE $MGR_LT_PID\"; sleep 30"]
            assert _locked(path), "the server holds a lock while it runs"
            wait_for(lambda: y.logs(queued.id).data, message="it printed")
            assert y.logs(queued.id).data == f"{path} {path}\n".encode()
            y.kill(queued.id)
            wait_for(lambda: _read(path)[:1] == ["ERR killed"], message="ERR killed")
            assert not _locked(path)
            endings = {
                "OK": ["true"],
                "ERR exit 3": ["sh", "-c", "exit 3"],
                "ERR signal KILL": ["sh", "-c", "kill -9 $$"],
                "ERR disk full": ["sh", "-c", f"{REPORT} error 'disk full'"],
                "ERR no space": ["sh", "-c", f"{REPORT} error 'no space'; exit 3"],
            }
            made = {line: y.submit(argv).id for line, argv in endings.items()}
            for line, task_id in made.items():
                wait_for(lambda t=task_id, want=line: _read(status / str(t))[:1] == [want],
                         timeout=30, message=line)
            later = y.submit(["true"], delay=3600)  # a client's submit: QUE from the events
            wait_for(lambda: _read(status / str(later.id))[:1] == ["QUE"], message="QUE")
            y.kill(later.id)  # a client's cancel
            wait_for(lambda: _read(status / str(later.id))[:1] == ["ERR killed"],
                     message="a cancel")
            y.rm(later.id)
            wait_for(lambda: not (status / str(later.id)).exists(), timeout=30,
                     message="the file of a removed task goes")
            fn = y.submit_function("nothing-registered", {"a": 1})
            wait_for(lambda: _read(status / str(fn.id))[1:] == ["nothing-registered",
                                                                '{"a":1}'],
                     timeout=30, message="a function's parameters")
        finally:
            stop_server(proc)
    assert not [p for p in status.iterdir() if p.name.startswith(".")], "no temp files left"


def test_a_crash_is_err_crashed_and_its_lock_is_gone_at_once(home: Path,
                                                             tmp_path: Path) -> None:
    status = tmp_path / "status"
    proc = server_process(home, "--slots", "1", env=_env(status))
    with Yard(home) as y:
        task = y.submit(["sleep", "60"])
        path = status / str(task.id)
        wait_for(lambda: _read(path)[:1] == ["RUN"] and _locked(path), message="RUN")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _read(path)[:1] == ["RUN"] and not _locked(path), \
            "RUN that nobody locks: a task whose server died, the classic way"
        proc = server_process(home, "--slots", "1", env=_env(status))
        try:
            wait_for(lambda: _read(path)[:1] == ["ERR crashed"], timeout=30,
                     message="ERR crashed")
        finally:
            stop_server(proc)


def test_a_queue_of_its_own_and_directories_that_cannot_be_written(home: Path,
                                                                   tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    assert cli(home, "queue", "set", "imports", "--status-dir", str(mine)).returncode == 0
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    out = cli(home, "queue", "set", "q2", "--status-dir", str(blocked))
    assert out.returncode == 2 and out.stderr.count(b"\n") == 1, out.stderr
    import subprocess

    out = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), "server",
                          "start", "--no-web"], capture_output=True, timeout=60,
                         env=dict(os.environ, TASKYARD_STATUS_DIR=str(blocked / "x")))
    assert out.returncode == 2 and b"status_dir" in out.stderr, out.stderr
    proc = server_process(home, "--slots", "1", env=_env(tmp_path / "status"))
    try:
        with Yard(home) as y:
            task = y.submit(["true"], queue="imports")
            wait_for(lambda: _read(mine / "imports" / str(task.id))[:1] == ["OK"],
                     message="OK in the queue's own directory")
            assert not (tmp_path / "status" / str(task.id)).exists()
        import json

        shown = json.loads(cli(home, "show", str(task.id), "--json").stdout)
        assert shown["status_file"] == str(mine / "imports" / str(task.id))
    finally:
        stop_server(proc)


def test_a_relative_status_dir_is_the_callers_also_for_a_daemonized_server(
        tmp_path: Path) -> None:
    """The daemon runs in /: a relative status_dir is resolved where `server start` ran."""
    import subprocess

    home = tmp_path / "home"
    env = dict(os.environ, TASKYARD_HOME=str(home), TASKYARD_STATUS_DIR="status")
    run = [sys.executable, "-m", "taskyard"]
    started = subprocess.run([*run, "server", "start", "--no-web"], cwd=tmp_path, env=env,
                             capture_output=True, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        task = subprocess.run([*run, "submit", "--", "true"], cwd=tmp_path, env=env,
                              capture_output=True, check=True, timeout=60)
        path = tmp_path / "status" / task.stdout.decode().strip()
        wait_for(lambda: _read(path)[:1] == ["OK"], timeout=30, message="OK where asked")
    finally:
        subprocess.run([*run, "server", "stop", "--now"], env=env, capture_output=True,
                       timeout=60)


def test_a_queue_name_cannot_lead_a_status_file_out_of_its_directory(home: Path,
                                                                     tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    for name in ("..", ".", "a\nb"):
        out = cli(home, "queue", "set", name, "--status-dir", str(mine), "--retain", "1d")
        assert out.returncode == 2, (name, out.stderr)
        said = out.stderr.decode()
        assert said.count("\n") == 1 and "queue" in said and "Traceback" not in said, said
        out = cli(home, "submit", "--queue", name, "--", "true")
        assert out.returncode == 2 and out.stderr.count(b"\n") == 1, (name, out.stderr)
    assert not mine.exists() and not (tmp_path / "evil").exists()
    with Yard(home) as y:
        assert [q["name"] for q in y.queues()] in ([], ["default"])
    for bad in ("/tmp/x\ny", "/tmp/x\ty"):
        out = cli(home, "queue", "set", "fine", "--status-dir", bad)
        assert out.returncode == 2 and b"control characters" in out.stderr, out.stderr
    # a / in a queue's name is written %2F in its folder: the file stays inside DIR
    out = cli(home, "queue", "set", "../evil", "--status-dir", str(mine))
    assert out.returncode == 0 and b"..%2Fevil" in out.stdout, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p != home) == ["mine"]
    proc = server_process(home, "--slots", "1", env=_env(tmp_path / "status"))
    try:
        with Yard(home) as y:
            task = y.submit(["true"], queue="../evil")
            path = mine / "..%2Fevil" / str(task.id)
            wait_for(lambda: _read(path)[:1] == ["OK"], timeout=30, message="inside DIR")
        assert sorted(p.name for p in tmp_path.iterdir() if p != home) == ["mine", "status"]
    finally:
        stop_server(proc)


def _fn_env(status: Path) -> dict[str, str]:
    tasks = Path(__file__).parent / "tasks_pkg"
    return dict(_env(status), TASKYARD_IMPORT_PATH=str(tasks), TASKYARD_IMPORTS="ty_tasks")


def test_a_function_task_is_told_its_status_file_and_every_client_shows_it(
        home: Path, tmp_path: Path) -> None:
    """The status dir only in the server's environment: the attempt carries the path, so
    show --json and the HTTP API (which cannot see that environment) show it too."""
    import json

    status = tmp_path / "status"
    proc = server_process(home, "--slots", "1", env=_fn_env(status))
    try:
        with Yard(home) as y:
            fn = y.submit_function("status_file")
            done = y.wait(fn.id, timeout=60)
            assert done is not None and done.status.value == "succeeded", done
            path = str(status / str(fn.id))
            assert y.result(fn.id) == {"ctx": path, "env": path, "old": path}
            assert "TASKYARD_STATUS_FILE" not in os.environ  # (the test's own)
            again = y.submit_function("status_file")  # the same worker: nothing left over
            assert y.wait(again.id, timeout=60) is not None
            assert y.result(again.id)["env"] == str(status / str(again.id))  # type: ignore[index]
            shown = json.loads(cli(home, "show", str(fn.id), "--json").stdout)
            assert shown["status_file"] == path
            assert shown["attempts"][0]["status_file"] == path
            assert _read(Path(path))[:1] == ["OK"]
    finally:
        stop_server(proc)


def test_a_queue_dir_changed_under_a_running_server_leaves_one_file_per_task(
        home: Path, tmp_path: Path) -> None:
    """The claim reads the queue's dir in its transaction: a task submitted right after
    `queue set --status-dir` runs with the new one (not the one the server read at its
    last heartbeat), and a file written before the change goes when the task's is
    written at its new place."""
    status, first, second = tmp_path / "status", tmp_path / "first", tmp_path / "second"
    env = dict(_env(status), TASKYARD_HEARTBEAT_INTERVAL="30", TASKYARD_LEASE="90")
    proc = server_process(home, "--slots", "2", env=env)
    try:
        with Yard(home) as y:
            before = y.submit(["true"], queue="q")
            wait_for(lambda: _read(status / str(before.id))[:1] == ["OK"], timeout=30,
                     message="OK in the server's dir")
            for folder in (first, second):
                out = cli(home, "queue", "set", "q", "--status-dir", str(folder))
                assert out.returncode == 0, out.stderr
                task = y.submit(["true"], queue="q")
                path = folder / "q" / str(task.id)
                wait_for(lambda p=path: _read(p)[:1] == ["OK"], timeout=30,  # type: ignore[misc]
                         message=f"OK in {folder}")
                files = [p for p in tmp_path.rglob(str(task.id)) if p.is_file()]
                assert files == [path], files
            y.restart(before.id)  # it waits again, then runs: in the queue's dir now
            path = second / "q" / str(before.id)
            wait_for(lambda: _read(path)[:1] == ["OK"], timeout=30, message="rerun")
            assert not (status / str(before.id)).exists()
    finally:
        stop_server(proc)
