"""A whole-task memory limit through a cgroup (issue 15): real cgroups, real servers, real
OOM kills. A task's *child* past the limit ends the task failed (limit); the server runs
on; the cgroup's peak is recorded; no cgroup is left behind, not even by a server killed
-9 (the next one on its home removes it). Skipped where this machine offers no memory
cgroup a server could make children of (not root, no delegation)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.model import Task
from taskyard.server import cgroupfs, cgroups
from taskyard.testing import cli, server_process, stop_server, wait_for


def _why_no_cgroup() -> str | None:
    """Why no server here could make memory cgroups (None: one can)."""
    name = f"taskyard-probe{os.getpid()}"
    try:
        _, subtree = cgroups._make_subtree(cgroupfs.read_places(), name)
    except cgroups.Unusable as exc:
        return str(exc)
    subtree.rmdir()
    return None


WHY = _why_no_cgroup()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no writable memory cgroup: {WHY}")

#: a shell whose child allocates (and touches) 200 MiB: the shell itself stays small
CHILD_HOG = ["sh", "-c", f"{sys.executable} -c 'b = bytearray(200 << 20)'"]


@pytest.fixture
def yard(home: Path) -> Iterator[Yard]:
    proc = server_process(home, "--slots", "2")
    try:
        with Yard(home) as y:
            yield y
    finally:
        stop_server(proc)


def _status(home: Path) -> dict[str, object]:
    found = json.loads(cli(home, "server", "status", "--json", check=True).stdout)
    assert isinstance(found["memory_cgroup"], dict)
    return found["memory_cgroup"]


def _subtree(home: Path) -> Path:
    described = _status(home)
    assert described["mode"] in ("v1", "v2"), described
    return Path(str(described["subtree"]))


def _task_cgroups(subtree: Path) -> list[str]:
    return sorted(p.name for p in subtree.iterdir() if p.is_dir()) if subtree.exists() else []


def _ended_process(pid: int) -> bool:
    """Gone, or a zombie (killed; whoever adopted it reaps it in its own time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def _ended(y: Yard, task_id: int) -> Task:
    task = y.wait(task_id, timeout=90)
    assert task is not None, f"task {task_id} did not end"
    return task


def test_a_child_past_the_limit_fails_the_task_and_the_server_runs_on(yard: Yard,
                                                                      home: Path) -> None:
    subtree = _subtree(home)
    hog = yard.submit(CHILD_HOG, limits={"memory": "64M"})
    task = _ended(yard, hog.id)
    assert (task.status, task.reason, task.error) == (Status.FAILED, Reason.LIMIT,
                                                      "memory limit 64M"), task
    (attempt,) = yard.attempts(hog.id)
    assert attempt.max_rss_kib is not None and 32 * 1024 <= attempt.max_rss_kib <= 64 * 1024
    after = yard.submit(["true"])
    assert _ended(yard, after.id).status is Status.SUCCEEDED, "the server carries on"
    wait_for(lambda: _task_cgroups(subtree) == [], timeout=30, message="no cgroup left")


def test_a_task_within_its_limit_succeeds_with_its_true_peak(yard: Yard, home: Path) -> None:
    subtree = _subtree(home)
    fine = yard.submit([sys.executable, "-c", "b = bytearray(40 << 20)"],
                       limits={"memory": "256M"})
    tiny = yard.submit(["true"], limits={"memory": "256M"})
    assert _ended(yard, fine.id).status is Status.SUCCEEDED
    assert _ended(yard, tiny.id).status is Status.SUCCEEDED
    (used,) = yard.attempts(fine.id)
    assert used.max_rss_kib is not None and 40 * 1024 <= used.max_rss_kib <= 200 * 1024
    (small,) = yard.attempts(tiny.id)
    # the cgroup's peak, not the forked server's pages wait4 would report (~30 MiB)
    assert small.max_rss_kib is not None and small.max_rss_kib < 8 * 1024, small
    wait_for(lambda: _task_cgroups(subtree) == [], timeout=30, message="no cgroup left")


def test_processes_that_escaped_the_group_are_killed_with_the_task(yard: Yard,
                                                                   home: Path) -> None:
    task = yard.submit(["sh", "-c", "setsid sleep 600 & echo $!"], limits={"memory": "64M"})
    assert _ended(yard, task.id).status is Status.SUCCEEDED
    escaped = int(yard.logs(task.id).data.strip())
    wait_for(lambda: _ended_process(escaped), timeout=30, message="the escapee killed")
    wait_for(lambda: _task_cgroups(_subtree(home)) == [], timeout=30, message="cgroup gone")


def test_the_next_server_removes_the_cgroups_a_killed_server_left(home: Path) -> None:
    proc = server_process(home)
    subtree = _subtree(home)
    with Yard(home) as y:
        task = y.submit(["sh", "-c", "sleep 600 & setsid sleep 600 & wait"],
                        limits={"memory": "64M"})
        cgroup = subtree / f"task-{task.id}-1"
        members = wait_for(lambda: len(cgroupfs.members(cgroup)) >= 3 and
                           cgroupfs.members(cgroup), timeout=30, message="the task running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert cgroup.is_dir(), "a dead server leaves its cgroups (nothing removed them yet)"
        proc = server_process(home)
        try:
            assert not subtree.exists(), "removed at start, before the server said ready"
            assert all(_ended_process(pid) for pid in members)
            ended = _ended(y, task.id)
            assert (ended.status, ended.reason) == (Status.FAILED, Reason.CRASHED)
            assert _subtree(home) != subtree
        finally:
            stop_server(proc)
    assert not (home / cgroups.STATE_FILE).exists(), "a clean stop removes its subtree"


def test_a_cgroup_that_cannot_be_made_falls_back_to_rlimit_as(yard: Yard, home: Path) -> None:
    subtree = _subtree(home)
    subtree.rmdir()  # taken away under the server: no task cgroup can be made now
    hog = yard.submit([sys.executable, "-c", "b = bytearray(1 << 30)"],
                      limits={"memory": "512M"})
    task = _ended(yard, hog.id)
    assert (task.status, task.reason, task.error) == (Status.FAILED, Reason.LIMIT,
                                                      "memory limit 512M")
    assert "MemoryError" in yard.logs(hog.id, "stderr").data.decode(), "RLIMIT_AS's failure"
    log = (home / "server.log").read_text()
    assert f"task {hog.id} attempt 1: no memory cgroup" in log


def test_memory_cgroup_off_keeps_rlimit_as(home: Path) -> None:
    (home / "taskyard.toml").write_text('[server]\nmemory_cgroup = "off"\n')
    proc = server_process(home)
    try:
        assert _status(home) == {"mode": "none", "subtree": None, "why": "memory_cgroup = off"}
        text = cli(home, "server", "status", check=True).stdout.decode()
        assert "memory limits: RLIMIT_AS per process (memory_cgroup = off)" in text
        with Yard(home) as y:
            hog = y.submit(CHILD_HOG, limits={"memory": "64M"})
            task = _ended(y, hog.id)
            assert (task.status, task.reason) == (Status.FAILED, Reason.LIMIT)
            assert "MemoryError" in y.logs(hog.id, "stderr").data.decode()
    finally:
        stop_server(proc)
