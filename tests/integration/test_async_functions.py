"""``async def`` tasks in a real server's workers: results, errors, output, timeouts,
kills, pause and graceful stop, one at a time (async_concurrency 1) and several on
one worker's event loop (async_concurrency 3), each with its own output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.model import Task
from taskyard.testing import server_process, stop_server, wait_for

TASKS = Path(__file__).parent / "tasks_pkg"


@pytest.fixture(params=[1, 3], ids=["one-at-a-time", "three-at-once"])
def concurrency(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def yard(concurrency: int, home: Path) -> Iterator[Yard]:
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS), TASKYARD_IMPORTS="ty_async",
               TASKYARD_ASYNC_CONCURRENCY=str(concurrency))
    proc = server_process(home, "--slots", "3", "--kill-grace", "1", env=env)
    try:
        with Yard(home) as y:
            # tasks claimed before a worker said which functions are async run alone:
            # one first, so that the tests below run side by side with three at once
            assert _ended(y, y.submit_function("aadd", {"a": 0, "b": 0}).id).status \
                is Status.SUCCEEDED
            yield y
    finally:
        stop_server(proc)


def _ended(y: Yard, task_id: int, timeout: float = 30) -> Task:
    task = y.wait(task_id, timeout=timeout)
    assert task is not None, f"task {task_id} did not end"
    return task


def _running(y: Yard, task_id: int) -> None:
    wait_for(lambda: y.get(task_id).status is Status.RUNNING, message="it runs")


def test_result_output_progress_and_exceptions(yard: Yard) -> None:
    t = _ended(yard, yard.submit_function("aadd", {"a": 2, "b": 3}).id)
    assert t.status is Status.SUCCEEDED and yard.result(t.id) == 5
    assert yard.logs(t.id).data == b"async adding 2 and 3\n"
    assert (t.progress.done, t.progress.message) == (1, "added")
    bad = _ended(yard, yard.submit_function("aboom", {"width": 7}).id)
    assert (bad.status, bad.reason, bad.error) == (Status.FAILED, Reason.EXCEPTION,
                                                   "ValueError: bad async width 7")
    assert b"Traceback" in yard.logs(bad.id, stream="stderr").data


def test_a_coroutine_that_never_returns_is_timed_out(yard: Yard) -> None:
    t = _ended(yard, yard.submit_function("asleep_forever", timeout=0.5).id)
    assert (t.status, t.reason) == (Status.FAILED, Reason.TIMEOUT)
    assert _ended(yard, yard.submit_function("aadd", {"a": 1, "b": 1}).id).status \
        is Status.SUCCEEDED  # the pool goes on


def _ticks(y: Yard, task_id: int) -> int:
    return int(y.get(task_id).meta.get("ticks") or 0)  # type: ignore[arg-type]


def _tick_to_the_end(y: Yard, tag: str) -> None:
    """A task that ticks five times beside the others, then ends (time passing, as
    the event loop sees it, with no sleep)."""
    other = y.submit_function("aticks", {"tag": tag, "until": "go"})
    wait_for(lambda: _ticks(y, other.id) >= 5, message=f"{tag} ticks")
    y.signal(other.id, "go")
    assert _ended(y, other.id).status is Status.SUCCEEDED


def test_kill_pause_resume_and_graceful_stop(yard: Yard) -> None:
    ticking = yard.submit_function("aticks", {"tag": "slow", "until": "go"})
    wait_for(lambda: _ticks(yard, ticking.id) >= 2, message="it ticks")
    assert yard.pause(ticking.id).status is Status.PAUSED
    _tick_to_the_end(yard, "first")  # by then the pause has surely reached it
    held = _ticks(yard, ticking.id)
    _tick_to_the_end(yard, "second")
    assert _ticks(yard, ticking.id) == held  # no code of it ran while paused
    assert yard.resume(ticking.id).status is Status.RUNNING
    wait_for(lambda: _ticks(yard, ticking.id) >= held + 3, message="it ticks again")
    yard.kill(ticking.id)
    killed = _ended(yard, ticking.id)
    assert (killed.status, killed.reason) == (Status.STOPPED, Reason.KILLED)
    stop = yard.submit_function("agraceful")
    _running(yard, stop.id)
    yard.stop_gracefully(stop.id)
    assert _ended(yard, stop.id).status is Status.SUCCEEDED


def test_several_at_once_each_with_its_own_output(yard: Yard, concurrency: int) -> None:
    tasks = [yard.submit_function("aticks", {"tag": f"t{i}", "until": "go"}) for i in range(3)]
    for t in tasks:
        wait_for(lambda t=t: _ticks(yard, t.id) >= 3, message="all tick")
    yard.kill(tasks[0].id)  # one of them killed: the others go on
    assert _ended(yard, tasks[0].id).reason is Reason.KILLED
    for t in tasks[1:]:
        yard.signal(t.id, "go")
    results = [yard.result(_ended(yard, t.id).id) for t in tasks[1:]]
    for i, t in enumerate(tasks):
        lines = yard.logs(t.id).data.decode().splitlines()
        assert lines and all(line.startswith(f"t{i} tick ") for line in lines), lines
    pids = {r["pid"] for r in results}
    # three at once: one worker's event loop ran them side by side; else one worker each
    assert len(pids) == (1 if concurrency > 1 else 2)
