"""Per-task output bounds: --output-head/--output-tail on submit, per queue with
queue set, for commands and functions (their output captured by the pool); show says
the bounds each attempt ran with."""

from __future__ import annotations

import json
import os
from pathlib import Path

from taskyard import Status, Yard
from taskyard.model import Attempt
from taskyard.testing import cli, server_process, stop_server

TASKS = Path(__file__).parent / "tasks_pkg"
WRITE = "head -c 5000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero | tr '\\0' b"


def _bounds(attempt: Attempt) -> tuple[int | None, int | None]:
    return attempt.output_head, attempt.output_tail


def _ended(y: Yard, task_id: int) -> None:
    done = y.wait(task_id, timeout=30)
    assert done is not None and done.status is Status.SUCCEEDED, done


def test_tasks_keep_what_they_and_their_queue_ask(home: Path) -> None:
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS), TASKYARD_IMPORTS="ty_tasks")
    proc = server_process(home, "--slots", "2", env=env)
    try:
        with Yard(home) as y:
            out = cli(home, "submit", "--output-head", "1K", "--output-tail", "100", "--json",
                      "--", "sh", "-c", WRITE)
            assert out.returncode == 0, out.stderr
            task_id = json.loads(out.stdout)["id"]
            _ended(y, task_id)
            read = y.logs(task_id)
            assert read.total == 8000 and read.data == b"a" * 1024
            rest = y.logs(task_id, offset=read.next_offset)  # a read never crosses the gap
            assert rest.dropped == (1024, 7900) and rest.data == b"b" * 100
            shown = json.loads(cli(home, "show", str(task_id), "--json").stdout)
            assert (shown["output_head"], shown["output_tail"]) == (1024, 100)
            assert shown["attempts"][-1]["output_head"] == 1024
            text = cli(home, "show", str(task_id)).stdout.decode()
            assert "first 1K and last 100 of each stream" in text

            assert cli(home, "queue", "set", "small", "--output-head", "10",
                       "--output-tail", "0").returncode == 0
            quiet = y.submit(["sh", "-c", WRITE], queue="small")
            _ended(y, quiet.id)
            assert y.logs(quiet.id).data == b"a" * 10 and y.logs(quiet.id).total == 8000
            assert _bounds(y.attempts(quiet.id)[-1]) == (10, 0)

            own = y.submit(["sh", "-c", WRITE], queue="small", output_tail="2K")
            _ended(y, own.id)  # its own tail wins over the queue's, the head is the queue's
            assert _bounds(y.attempts(own.id)[-1]) == (10, 2048)

            fn = y.submit_function("add", {"a": 1, "b": 2}, output_head=6, output_tail=0)
            _ended(y, fn.id)
            assert y.logs(fn.id).data == b"adding"
            said = cli(home, "queue", "set", "other", "--output-head", "", "--output-tail", "2K")
            assert said.stdout.decode() == ("queue other: output head the server's, tail"
                                            " 2048 bytes\n"), said
            default = y.submit(["true"])
            _ended(y, default.id)
            assert _bounds(y.attempts(default.id)[-1]) == (1 << 20, 32 << 20)
    finally:
        stop_server(proc)


def test_bounds_over_what_the_server_allows_are_refused(home: Path) -> None:
    out = cli(home, "submit", "--output-tail", "2G", "--", "true")
    assert out.returncode == 2
    assert out.stderr.decode().count("\n") == 1 and "output_tail" in out.stderr.decode()
    out = cli(home, "queue", "set", "q", "--output-tail", "lots")
    assert out.returncode == 2 and "output_tail" in out.stderr.decode()
    assert json.loads(cli(home, "ls", "--json").stdout)["items"] == []
