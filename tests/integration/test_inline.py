"""Inline mode (``Yard.inline()``) on the function-task semantics the real server
passes (mirroring test_functions.py and test_async_functions.py), commands run as
real child processes, and ``Yard.memory()``."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.errors import TransitionError
from taskyard.testing import cli, wait_for

TASKS = Path(__file__).parent / "tasks_pkg"


@pytest.fixture(scope="module", autouse=True)
def _task_modules() -> None:
    """Import the test task modules here, as a test imports the code it tests."""
    sys.path.insert(0, str(TASKS))
    import ty_async  # noqa: F401
    import ty_tasks  # noqa: F401


@pytest.fixture(params=["memory", "file"])
def yard(request: pytest.FixtureRequest, home: Path) -> Iterator[Yard]:
    with (Yard.inline() if request.param == "memory" else Yard.inline(home)) as y:
        yield y


def _beside(action: Callable[[], object]) -> threading.Thread:
    """Run ``action`` in another thread (an operator acting while the task runs here)."""
    thread = threading.Thread(target=action)
    thread.start()
    return thread


def _running(yard: Yard) -> int:
    found = wait_for(lambda: yard.list(status="running"), message="a task runs")
    return found[0].id


def test_result_output_and_exceptions(yard: Yard) -> None:
    t = yard.submit_function("add", {"a": 2, "b": 3})
    assert t.status is Status.SUCCEEDED and yard.result(t.id) == 5
    assert yard.logs(t.id).data == b"adding 2 and 3\n"
    assert b"logged to stderr" in yard.logs(t.id, stream="stderr").data
    assert [e.to_status for e in yard.events(t.id)][-2:] == [Status.RUNNING, Status.SUCCEEDED]
    bad = yard.submit_function("boom", {"width": 7})
    assert (bad.status, bad.reason, bad.error) == (Status.FAILED, Reason.EXCEPTION,
                                                   "ValueError: bad width 7")
    trace = yard.logs(bad.id, stream="stderr").data
    assert b"Traceback" in trace and b"ValueError: bad width 7" in trace
    wrong = yard.submit_function("add", {"a": 1})
    assert wrong.reason is Reason.EXCEPTION and "TypeError" in (wrong.error or "")


def test_an_error_text_that_is_not_utf8_is_stored_escaped(yard: Yard) -> None:
    bad = yard.submit_function("boom_bytes")
    assert bad.error == "ValueError: cannot read /data/\\udcff"
    odd = yard.submit_function("boom_unprintable")
    assert (odd.reason, odd.error) == (Reason.EXCEPTION, "Unprintable (its message could not"
                                                         " be turned into text)")


def test_unknown_names_fail_with_spawn(yard: Yard) -> None:
    for name in ("nope", "os.system", "builtins.exec"):
        t = yard.submit_function(name)
        assert (t.status, t.reason) == (Status.FAILED, Reason.SPAWN), t
        assert "no function named" in (t.error or "")


def test_a_function_that_never_returns_is_timed_out(yard: Yard) -> None:
    for name in ("forever", "asleep_forever"):
        t = yard.submit_function(name, timeout=0.5)
        assert (t.status, t.reason) == (Status.FAILED, Reason.TIMEOUT), name


def test_signals_config_and_graceful_stop_from_another_thread(yard: Yard) -> None:
    def send() -> None:
        task_id = _running(yard)
        yard.signal(task_id, "noise")
        yard.signal(task_id, "go", {"speed": 9})

    thread = _beside(send)
    sig = yard.submit_function("wait_signal")
    thread.join()
    assert sig.status is Status.SUCCEEDED and yard.result(sig.id) == {"speed": 9}
    with pytest.raises(TransitionError):
        yard.signal(sig.id, "late")

    def configure() -> None:
        task_id = _running(yard)
        wait_for(lambda: yard.get(task_id).progress.done == 1, message="it reads config")
        yard.set_config(task_id, {"speed": 1})
        yard.set_config(task_id, {"speed": 2})

    thread = _beside(configure)
    cfg = yard.submit_function("wait_config")
    thread.join()
    assert cfg.status is Status.SUCCEEDED and yard.result(cfg.id)["seen"][-1] == 2
    for name in ("graceful", "agraceful"):
        thread = _beside(lambda: yard.stop_gracefully(_running(yard)))
        stop = yard.submit_function(name)
        thread.join()
        assert stop.status is Status.SUCCEEDED and yard.result(stop.id)["stopped_after"] >= 0


def test_progress_in_a_tight_loop_is_throttled(yard: Yard) -> None:
    t = yard.submit_function("spin_progress", {"n": 200_000})
    assert (t.status, t.progress.done, t.progress.total) == (Status.SUCCEEDED, 199_999, 200_000)


def test_steps_retry_with_changed_params_and_skip(yard: Yard) -> None:
    steps = yard.submit_function("pipeline", {"fail_below": 2, "chunks": 4})
    assert steps.status is Status.SUCCEEDED, steps
    assert [s["status"] for s in yard.result(steps.id)["steps"]] == ["done", "skipped", "done"]
    status = yard.get(steps.id).steps
    assert status["steps"][0]["retries"] == 2 and "level 1" in status["steps"][0]["error"]
    assert status["steps"][2]["chunks"] == 4 and yard.get(steps.id).progress.done == 3


def test_reported_errors_retries_chains_and_cpu(yard: Yard) -> None:
    task = yard.submit_function("reports_error", {"message": "upstream said 503"})
    assert (task.status, task.reason, task.error) == (Status.FAILED, Reason.REPORTED,
                                                      "upstream said 503")
    assert yard.attempts(task.id)[0].report == "error"
    retried = yard.submit_function("boom", {"width": 1}, retries=2, retry_delay=0.01)
    wait_for(lambda: yard.run_pending() == 0 and yard.get(retried.id).status  # type: ignore[attr-defined]
             is Status.FAILED, message="its retries ran")
    assert len(yard.attempts(retried.id)) == 3
    first = yard.submit_function("add", {"a": 1, "b": 2}, delay=60)
    then = yard.submit_function("add", {"a": 3, "b": 4}, after=[first.id])
    assert (first.status, then.status) == (Status.SCHEDULED, Status.SCHEDULED)
    (attempt,) = yard.attempts(yard.submit_function("add", {"a": 1, "b": 2}).id)
    assert attempt.cpu_user is not None and attempt.max_rss_kib is not None


def test_async_functions_run_inline(yard: Yard) -> None:
    t = yard.submit_function("aadd", {"a": 2, "b": 3})
    assert (t.status, yard.result(t.id), t.progress.done) == (Status.SUCCEEDED, 5, 1)
    assert yard.logs(t.id).data == b"async adding 2 and 3\n"
    bad = yard.submit_function("aboom", {"width": 7})
    assert (bad.reason, bad.error) == (Reason.EXCEPTION, "ValueError: bad async width 7")


def test_commands_run_as_real_processes(yard: Yard, tmp_path: Path) -> None:
    t = yard.submit(["sh", "-c", "echo out; echo err >&2; echo $TASKYARD_TASK_ID"])
    assert t.status is Status.SUCCEEDED and t.exit_code == 0
    assert yard.logs(t.id).data == f"out\n{t.id}\n".encode()
    assert yard.logs(t.id, stream="stderr").data == b"err\n"
    failed = yard.submit(["sh", "-c", "exit 3"])
    assert (failed.status, failed.reason, failed.exit_code) == (Status.FAILED, Reason.EXIT, 3)
    slow = yard.submit(["sleep", "30"], timeout=0.3)
    assert (slow.status, slow.reason) == (Status.FAILED, Reason.TIMEOUT)
    missing = yard.submit(["/no/such/program"])
    assert (missing.status, missing.reason) == (Status.FAILED, Reason.SPAWN)
    piped = yard.submit(["cat"], stdin=b"fed\n", cwd=str(tmp_path))
    assert yard.logs(piped.id).data == b"fed\n"


def test_a_memory_yard_is_a_whole_store_and_makes_no_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKYARD_HOME", str(tmp_path / "home"))
    for y in (Yard.memory(), Yard(store=":memory:")):
        with y:
            t = y.submit(["true"], meta={"k": 1})
            assert y.get(t.id).status is Status.QUEUED and y.list()[0].id == t.id
            assert [e.to_status for e in y.events(t.id)] == [Status.QUEUED]
    with Yard.memory() as fresh:
        assert fresh.list() == []  # each is a store of its own
    assert list(tmp_path.iterdir()) == []


def test_an_app_submits_through_the_yard_it_is_given(yard: Yard) -> None:
    import ty_async

    ty_async.app.use(yard)
    try:
        task = ty_async.aadd.submit(a=20, b=22)
    finally:
        ty_async.app.use(None)
    assert (task.status, yard.result(task.id)) == (Status.SUCCEEDED, 42)


def test_kill_from_another_thread_ends_a_function_or_a_command_and_pause_is_refused(
        yard: Yard) -> None:
    refused: list[str] = []

    def pause_then_kill() -> None:
        task_id = _running(yard)
        try:
            yard.pause(task_id)
        except TransitionError as exc:
            refused.append(str(exc))
        yard.kill(task_id)

    for submit in (lambda: yard.submit_function("forever"),
                   lambda: yard.submit_function("asleep_forever"),
                   lambda: yard.submit(["sleep", "30"])):
        thread = _beside(pause_then_kill)
        task = submit()
        thread.join()
        assert (task.status, task.reason) == (Status.STOPPED, Reason.KILLED), task
    assert len(refused) == 3 and all("runs inline" in r for r in refused), refused
    assert yard.submit_function("add", {"a": 1, "b": 1}).status is Status.SUCCEEDED


def test_a_checkpoint_carries_over_to_the_next_attempt(yard: Yard) -> None:
    t = yard.submit_function("counter", {"until": 3})
    assert yard.result(t.id) == {"i": 3, "attempts": [1]}
    again = yard.restart(t.id)  # runs at once, from the last checkpoint
    assert again.status is Status.SUCCEEDED
    assert yard.result(t.id) == {"i": 3, "attempts": [1, 2]}
    assert [a.status for a in yard.attempts(t.id)] == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_a_command_has_its_messages_fd_and_submit_many_runs_too(yard: Yard) -> None:
    task = yard.submit(["sh", "-c", "echo '{\"a\": 1}' >&$TASKYARD_MESSAGES_FD; echo nope"
                        " >&$TASKYARD_MESSAGES_FD; exit 3"])
    assert task.status is Status.FAILED and task.exit_code == 3
    read = yard.messages(task.id)
    assert [m.value for m in read.items] == [{"a": 1}, {"text": "nope"}]
    assert [m.raw for m in read.items] == [False, True]
    made = yard.submit_many([{"argv": ["true"]}, {"argv": ["sh", "-c", "exit 4"]}])
    assert [(t.status, t.exit_code) for t in made] == [(Status.SUCCEEDED, 0),
                                                         (Status.FAILED, 4)]


def test_a_kill_asked_while_a_command_starts_kills_its_group_once_it_exists(
        tmp_path: Path) -> None:
    """A kill that came before the command's group existed was raised as an exception in
    the starting thread; under load it landed after the child started and left it
    running, unwaited for. It is now applied to the group as soon as there is one."""
    import subprocess

    from taskyard.server.inline import Watch
    from taskyard.store.sqlite import SQLiteStore

    watch = Watch(lambda: SQLiteStore(tmp_path / "t.db"), "owner", command=True)
    try:
        assert watch._answer("kill") == ("done", None)  # no exception raised here
        child = subprocess.Popen(["sleep", "30"], start_new_session=True)
        watch.started(child.pid)
        assert child.wait(timeout=30) == -9
    finally:
        watch.disarm()


def test_the_cli_and_the_server_refuse_a_memory_store(tmp_path: Path) -> None:
    """`--store :memory:` is a store in one process's memory (Yard.memory(), for tests):
    `taskyard submit` printed an id for a task gone when it exited, and a server
    started on one that no client could ever reach. Both are exit 2 naming store."""
    home = tmp_path / "home"
    for args in (["--store", ":memory:", "submit", "--", "true"],
                 ["--store", ":memory:", "ls"],
                 ["--store", ":memory:", "server", "start", "--foreground", "--no-web"]):
        out = cli(home, *args, timeout=60)
        err = out.stderr.decode()
        assert out.returncode == 2 and err.count("\n") == 1 and "store" in err, (args, err)
        assert out.stdout == b""
