"""Function tasks in a real server's worker pool: results, errors, output, controls,
the in-task API and multi-step tasks."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.testing import server_process, stop_server, wait_for

TASKS = Path(__file__).parent / "tasks_pkg"


def _env() -> dict[str, str]:
    return dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS), TASKYARD_IMPORTS="ty_tasks")


@pytest.fixture
def yard(home: Path) -> Iterator[Yard]:
    proc = server_process(home, "--slots", "2", "--kill-grace", "1", env=_env())
    try:
        with Yard(home) as y:
            yield y
    finally:
        stop_server(proc)


def _ended(y: Yard, task_id: int, timeout: float = 30):  # type: ignore[no-untyped-def]
    task = y.wait(task_id, timeout=timeout)
    assert task is not None, f"task {task_id} did not end"
    return task


def test_result_output_and_exceptions(yard: Yard) -> None:
    t = yard.submit_function("add", {"a": 2, "b": 3})
    assert _ended(yard, t.id).status is Status.SUCCEEDED
    assert yard.result(t.id) == 5
    assert yard.logs(t.id).data == b"adding 2 and 3\n"
    assert b"logged to stderr" in yard.logs(t.id, stream="stderr").data
    bad = _ended(yard, yard.submit_function("boom", {"width": 7}).id)
    assert (bad.status, bad.reason, bad.error) == (Status.FAILED, Reason.EXCEPTION,
                                                   "ValueError: bad width 7")
    trace = yard.logs(bad.id, stream="stderr").data
    assert b"Traceback" in trace and b"ValueError: bad width 7" in trace
    wrong = _ended(yard, yard.submit_function("add", {"a": 1}).id)  # a missing argument
    assert wrong.reason is Reason.EXCEPTION and "TypeError" in (wrong.error or "")


def test_an_error_text_that_is_not_utf8_is_stored_escaped(yard: Yard) -> None:
    """A worker's exception naming an undecodable file name: the server stores the text
    escaped instead of failing its write (and stopping)."""
    bad = _ended(yard, yard.submit_function("boom_bytes").id)
    assert (bad.status, bad.reason) == (Status.FAILED, Reason.EXCEPTION)
    assert bad.error == "ValueError: cannot read /data/\\udcff"
    after = _ended(yard, yard.submit_function("add", {"a": 1, "b": 1}).id)
    assert after.status is Status.SUCCEEDED  # the server still runs
    odd = _ended(yard, yard.submit_function("boom_unprintable").id)  # its __str__ raises
    assert (odd.reason, odd.error) == (Reason.EXCEPTION, "Unprintable (its message could not"
                                                         " be turned into text)")


def test_unknown_names_fail_with_spawn_and_import_nothing(yard: Yard, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    for name in ("nope", "os.system", "ty_tasks.add", "builtins.exec"):
        t = _ended(yard, yard.submit_function(name, {"x": str(marker)}).id)
        assert (t.status, t.reason) == (Status.FAILED, Reason.SPAWN), t
        assert "no function named" in (t.error or "")
    assert not marker.exists()
    assert _ended(yard, yard.submit_function("add", {"a": 1, "b": 1}).id).status \
        is Status.SUCCEEDED


def test_kill_replaces_the_worker_and_the_pool_keeps_serving(yard: Yard) -> None:
    first = yard.submit_function("forever")
    worker = wait_for(lambda: yard.get(first.id).pid, message="its worker's pid is recorded")
    assert yard.pause(first.id).status is Status.PAUSED
    assert yard.resume(first.id).status is Status.RUNNING
    yard.kill(first.id)
    done = _ended(yard, first.id)
    assert (done.status, done.reason) == (Status.STOPPED, Reason.KILLED)
    wait_for(lambda: not os.path.exists(f"/proc/{worker}"), message="the worker is gone")
    pids = {yard.result(_ended(yard, yard.submit_function("pid").id).id) for _ in range(4)}
    assert worker not in pids and len(pids) <= 2  # served by the (new) pool of two


def test_a_function_that_never_returns_is_timed_out(yard: Yard) -> None:
    t = _ended(yard, yard.submit_function("forever", timeout=0.5).id)
    assert (t.status, t.reason) == (Status.FAILED, Reason.TIMEOUT)


def test_signals_config_and_graceful_stop(yard: Yard) -> None:
    sig = yard.submit_function("wait_signal")
    wait_for(lambda: yard.get(sig.id).status is Status.RUNNING)
    yard.signal(sig.id, "noise")
    yard.signal(sig.id, "go", {"speed": 9})
    assert _ended(yard, sig.id).status is Status.SUCCEEDED
    assert yard.result(sig.id) == {"speed": 9}
    from taskyard.errors import TransitionError

    with pytest.raises(TransitionError):
        yard.signal(sig.id, "late")
    cfg = yard.submit_function("wait_config")
    wait_for(lambda: yard.get(cfg.id).progress.done == 1, message="it reads its config")
    yard.set_config(cfg.id, {"speed": 1})
    yard.set_config(cfg.id, {"speed": 2})
    assert _ended(yard, cfg.id).status is Status.SUCCEEDED
    assert yard.result(cfg.id)["seen"][-1] == 2
    stop = yard.submit_function("graceful")
    wait_for(lambda: yard.get(stop.id).status is Status.RUNNING)
    yard.stop_gracefully(stop.id)
    assert _ended(yard, stop.id).status is Status.SUCCEEDED
    assert yard.result(stop.id)["stopped_after"] >= 0  # it may see the ask at once


def test_progress_in_a_tight_loop_is_throttled(yard: Yard) -> None:
    t = _ended(yard, yard.submit_function("spin_progress", {"n": 200_000}).id, timeout=60)
    assert t.status is Status.SUCCEEDED
    assert (t.progress.done, t.progress.total) == (199_999, 200_000)


def test_checkpoint_survives_kill_9_of_the_server(home: Path) -> None:
    proc = server_process(home, "--slots", "2", env=_env())
    try:
        with Yard(home) as y:
            t = y.submit_function("counter", {"until": 40}, retries=1, retry_on=["crashed"],
                                  retry_delay=0.1)
            wait_for(lambda: (y.get(t.id).progress.done or 0) >= 5, message="it counts")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = server_process(home, "--slots", "2", env=_env())
            done = _ended(y, t.id)
            assert done.status is Status.SUCCEEDED
            result = y.result(t.id)
            assert result["i"] == 40 and result["attempts"] == [1, 2]
            first, second = y.attempts(t.id)
            assert first.reason is Reason.CRASHED and second.status is Status.SUCCEEDED
    finally:
        stop_server(proc)


def test_steps_retry_with_changed_params_skip_and_yield(home: Path) -> None:
    """One slot: the long multi-step task gives it back between chunks to the quick ones."""
    proc = server_process(home, "--slots", "1", env=_env())
    try:
        with Yard(home) as y:
            _steps(y)
    finally:
        stop_server(proc)


def _steps(yard: Yard) -> None:
    steps = yard.submit_function("pipeline", {"fail_below": 2, "chunks": 4})
    wait_for(lambda: yard.get(steps.id).status is Status.RUNNING)
    quick = [yard.submit_function("add", {"a": i, "b": 0}).id for i in range(3)]
    done = _ended(yard, steps.id)
    assert done.status is Status.SUCCEEDED, done
    assert [s["status"] for s in yard.result(steps.id)["steps"]] == ["done", "skipped", "done"]
    status = yard.get(steps.id).steps
    assert status["steps"][0]["retries"] == 2 and "level 1" in status["steps"][0]["error"]
    assert status["steps"][2]["chunks"] == 4
    assert all(_ended(yard, q).status is Status.SUCCEEDED for q in quick)
    # it gave its slot back while the quick ones waited: more than one attempt, and the
    # quick ones ended before it
    attempts = yard.attempts(steps.id)
    assert len(attempts) >= 2 and attempts[0].status is Status.QUEUED
    assert max(yard.get(q).finished_at or 0 for q in quick) < (done.finished_at or 0)
    assert yard.get(steps.id).progress.done == 3


def test_workers_are_recycled_after_max_tasks(home: Path) -> None:
    env = dict(_env(), TASKYARD_WORKER_MAX_TASKS="3")
    proc = server_process(home, "--slots", "1", env=env)
    try:
        with Yard(home) as y:
            pids = [y.result(_ended(y, y.submit_function("pid").id).id) for _ in range(7)]
    finally:
        stop_server(proc)
    assert [len(set(pids[i:i + 3])) for i in (0, 3)] == [1, 1] and len(set(pids)) == 3


def test_a_function_that_reports_an_error_ends_failed_reported(yard: Yard) -> None:
    from taskyard import Reason

    task = yard.submit_function("reports_error", {"message": "upstream said 503"})
    done = _ended(yard, task.id)
    assert (done.status, done.reason, done.error) == (Status.FAILED, Reason.REPORTED,
                                                      "upstream said 503")
    assert yard.attempts(task.id)[0].report == "error"


def test_a_function_attempt_records_its_cpu(yard: Yard) -> None:
    task = yard.submit_function("add", {"a": 1, "b": 2})
    _ended(yard, task.id)
    (attempt,) = yard.attempts(task.id)
    assert attempt.cpu_user is not None and attempt.cpu_system is not None
    assert attempt.max_rss_kib is not None and attempt.max_rss_kib > 1024
