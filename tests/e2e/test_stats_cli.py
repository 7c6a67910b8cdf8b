"""``taskyard stats`` against a real server: what ran, failed and waits, and the
memory the server samples from its running tasks' process groups (a command's whole
group, a function's worker), as JSON and as a table; bad input is one line, exit 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from taskyard import Status, Yard
from taskyard.testing import cli, running_server, server_process, stop_server, wait_for
from tests.e2e.test_cli import ok, user_error

HOLD = "import time\nblock = bytearray(48 * 1024 * 1024)\ntime.sleep(600)\n"
TASKS = Path(__file__).parent.parent / "integration" / "tasks_pkg"


def stats(home: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(home, "stats", "--json", *args))
    return data


def _sampled(home: Path, task_id: int, at_least_kib: int) -> dict[str, Any] | None:
    data = stats(home)
    mine = [r for r in data["running"] if r["id"] == task_id]
    return data if mine and (mine[0]["rss_kib"] or 0) >= at_least_kib else None


def test_stats_of_command_tasks(home: Path) -> None:
    with running_server(home, "--slots", "3"), Yard(home) as y:
        good = y.submit(["true"], queue="q1")
        bad = y.submit(["sh", "-c", "exit 3"], queue="q1", tenant="default")
        # the memory is a grandchild's: the group is summed, not the leader alone
        holder = y.submit(["sh", "-c", f"{sys.executable} -c '{HOLD}'; true"], queue="q2")
        for task_id, status in ((good.id, Status.SUCCEEDED), (bad.id, Status.FAILED)):
            done = y.wait(task_id, timeout=30)
            assert done is not None and done.status is status
        data = wait_for(lambda: _sampled(home, holder.id, 48 * 1024), timeout=30,
                        message="the holder's memory sampled")
        assert data["submitted"] == 3 and data["started"] == 3 and data["finished"] == 2
        assert data["ended"] == {"succeeded": 1, "failed": 1, "stopped": 0}
        assert data["failures"] == {"exit": 1}
        assert data["tasks"]["running"] == 1 and data["tasks"]["succeeded"] == 1
        assert data["wait"]["count"] == 3 and data["run"]["count"] == 2
        assert data["run"]["max"] >= data["run"]["p50"] >= 0
        assert sum(data["per_minute"]["submitted"]) == 3 and len(data["per_minute"]["started"]) == 60
        assert data["memory"]["max_task"] == holder.id
        assert data["memory"]["max_kib"] >= 48 * 1024
        assert set(data["queues"]) == {"q1", "q2"} and set(data["tenants"]) == {"default"}
        assert data["queues"]["q1"]["failures"] == {"exit": 1}
        assert data["queues"]["q2"]["memory"]["max_task"] == holder.id
        only = stats(home, "--queue", "q1", "--since", "10m")
        assert only["queue"] == "q1" and only["submitted"] == 2 and only["memory"]["tasks"] == 0
        assert len(only["per_minute"]["submitted"]) == 10
        text = ok(home, "stats")
        assert "failures    exit 1" in text and f"(task {holder.id})" in text
        assert "QUEUE" in text and "TENANT" in text
        y.kill(holder.id, "KILL")
        assert y.wait(holder.id, timeout=30) is not None


def test_stats_of_a_function_task_counts_its_worker(home: Path) -> None:
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS), TASKYARD_IMPORTS="ty_tasks")
    proc = server_process(home, "--slots", "1", env=env)
    try:
        with Yard(home) as y:
            task = y.submit_function("forever", queue="fn")
            data = wait_for(lambda: _sampled(home, task.id, 1024), timeout=30,
                            message="the worker's memory sampled")
            assert data["queues"]["fn"]["memory"]["sampled"] == 1
            assert y.stats(queue="fn").total.memory.max_task == task.id
            y.kill(task.id, "KILL")
            assert y.wait(task.id, timeout=30) is not None
    finally:
        stop_server(proc)


def test_bad_input_is_one_line(home: Path) -> None:
    for args in (("--since", "0s"), ("--since", "abc"), ("--since", "101d"),
                 ("--queue", ""), ("--tenant", "a\tb"), ("--since",)):
        user_error(home, "stats", *args)
    assert cli(home, "stats", "--since", "30s").returncode == 0
