"""A task's own verdict: taskyard report ok|error (a command), ctx.report_error (a
function), fenced by the attempt like every write of a task."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from taskyard import Reason, Status, Yard
from taskyard.testing import cli, running_server

REPORT = f"{sys.executable} -m taskyard report"


def _run(y: Yard, script: str) -> int:
    task = y.submit(["sh", "-c", script])
    done = y.wait(task.id, timeout=30)
    assert done is not None, task
    return task.id


def test_a_reported_error_then_exit_0_fails_the_task_reported(home: Path) -> None:
    with running_server(home, "--slots", "2"), Yard(home) as y:
        failed = _run(y, f"{REPORT} error 'disk quota exceeded'; exit 0")
        task = y.get(failed)
        assert (task.status, task.reason) == (Status.FAILED, Reason.REPORTED)
        assert task.error == "disk quota exceeded" and task.exit_code == 0
        (attempt,) = y.attempts(failed)
        assert (attempt.report, attempt.report_message) == ("error", "disk quota exceeded")
        assert attempt.status is Status.FAILED and attempt.reason is Reason.REPORTED
        shown = cli(home, "show", str(failed)).stdout.decode()
        assert "reported  error: disk quota exceeded" in shown
        as_json = json.loads(cli(home, "show", str(failed), "--json").stdout)
        assert as_json["attempts"][0]["report"] == "error"
        # an exit that is an error itself stays that, with the message kept
        exited = y.get(_run(y, f"{REPORT} error 'half done'; exit 3"))
        assert (exited.status, exited.reason, exited.exit_code) == (Status.FAILED,
                                                                   Reason.EXIT, 3)
        assert y.attempts(exited.id)[0].report_message == "half done"
        # the last report counts: ok takes an error back
        taken_back = y.get(_run(y, f"{REPORT} error oops && {REPORT} ok"))
        assert taken_back.status is Status.SUCCEEDED
        assert y.attempts(taken_back.id)[0].report == "ok"
        # a restart is a new attempt: the report was the old one's
        y.restart(failed)
        again = y.wait(failed, timeout=30)
        assert again is not None and again.status is Status.FAILED  # it reports again


def test_report_outside_a_running_task_is_a_clear_error(home: Path) -> None:
    out = cli(home, "report", "error", "x")
    assert out.returncode == 2 and b"runs inside a task" in out.stderr
    with Yard(home) as y:
        task = y.submit(["true"])
    import os
    import subprocess

    env = dict(os.environ, TASKYARD_TASK_ID=str(task.id), TASKYARD_ATTEMPT="1",
               TASKYARD_HOME=str(home))
    stale = subprocess.run([sys.executable, "-m", "taskyard", "report", "error", "x"],
                           capture_output=True, env=env)
    assert stale.returncode == 2 and stale.stderr.count(b"\n") == 1, stale.stderr
    assert b"not running" in stale.stderr
    assert cli(home, "report", "ok", "why").returncode == 2
    assert cli(home, "report", "maybe").returncode == 2


def test_a_report_from_a_process_that_copied_a_running_tasks_variables_is_refused(
        home: Path, tmp_path: Path) -> None:
    """Only the task's processes report: its own, children that left its process group
    (setsid), not a process that merely has its TASKYARD_* variables."""
    import os
    import subprocess

    from taskyard.testing import wait_for

    marker = tmp_path / "go"
    script = (f"echo \"$TASKYARD_TASK_ID $TASKYARD_ATTEMPT $TASKYARD_RUN\";"
              f" while [ ! -e {marker} ]; do sleep 0.05; done;"
              f" setsid {REPORT} error 'from a child in a session of its own'")
    with running_server(home, "--slots", "1"), Yard(home) as y:
        task = y.submit(["sh", "-c", script])
        wait_for(lambda: y.logs(task.id).data.count(b"\n") == 1, timeout=30,
                 message="it printed its variables")
        tid, epoch, run = y.logs(task.id).data.decode().split()
        env = dict(os.environ, TASKYARD_TASK_ID=tid, TASKYARD_ATTEMPT=epoch,
                   TASKYARD_RUN=run, TASKYARD_HOME=str(home))
        forged = subprocess.run([sys.executable, "-m", "taskyard", "report", "error", "x"],
                                capture_output=True, env=env, timeout=60)
        assert forged.returncode == 2, forged.stderr
        said = forged.stderr.decode()
        assert said.count("\n") == 1 and f"not one of task {tid}'s" in said, said
        assert y.attempts(task.id)[0].report is None, "nothing written"
        marker.touch()
        done = y.wait(task.id, timeout=30)
        assert done is not None and done.reason is Reason.REPORTED, done
        assert done.error == "from a child in a session of its own"
