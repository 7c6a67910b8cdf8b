"""Two deployments on one host and one PostgreSQL server (separate homes, separate
databases): one steering its tasks never touches the other's."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from taskyard import Status, Yard
from taskyard.testing import cli, server_process, stop_server, wait_for

ROUNDS = 30


def _env(dsn: str) -> dict[str, str]:
    return dict(os.environ, TASKYARD_STORE=dsn, TASKYARD_POLL_INTERVAL="0.5")


def _ok(home: Path, dsn: str, *args: str) -> bytes:
    done = cli(home, "--store", dsn, *args)
    assert done.returncode == 0, (args, done.stderr.decode())
    return done.stdout


def _steer_in_a_loop(home: Path, dsn: str, rounds: int, errors: list[str]) -> None:
    """What an operator of the other deployment does, over and over: submit, pause,
    resume, kill (the first round through the CLI, as in the report, the others
    through the Python API: the same ops, without a process start each)."""
    try:
        with Yard(home, store=dsn) as y:
            for round_ in range(rounds):
                task_id = y.submit(["sh", "-c", "sleep 999 & sleep 999"]).id
                wait_for(lambda t=task_id: y.get(t).pid is not None, timeout=30,
                         message="the loop's task runs")
                for verb in ("pause", "resume", "kill"):
                    if round_ == 0:
                        _ok(home, dsn, verb, str(task_id))
                    else:
                        getattr(y, verb)(task_id)
                done = y.wait(task_id, timeout=30)
                assert done is not None and done.status is Status.STOPPED, done
    except BaseException as exc:  # reported by the test's thread
        errors.append(repr(exc))


def test_two_deployments_side_by_side_never_touch_each_others_tasks(
        tmp_path: Path, pg_database: Callable[[], str], busy_cpus: list[int]) -> None:
    """B's tasks stay running, untouched (one attempt, no event after their start),
    while A pauses, resumes and kills its own tasks in a loop with both CPUs busy;
    then B's own controls work on them, every one answered as done."""
    dsn_a, dsn_b = pg_database(), pg_database()
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    servers = [server_process(home_a, "--slots", "4", env=_env(dsn_a)),
               server_process(home_b, "--slots", "4", env=_env(dsn_b))]
    client_b = tmp_path / "client-b"  # B's client is on another "node": a home of its own
    try:
        with Yard(client_b, store=dsn_b) as b:
            sleeper = b.submit(["sh", "-c", "sleep 999 & sleep 999"])
            reporter = b.submit(["sh", "-c", f"{sys.executable} -m taskyard progress 4 8 half;"
                                 " sleep 999"])
            wait_for(lambda: b.get(reporter.id).progress.done == 4, timeout=30,
                     message="B's task reports progress")
            wait_for(lambda: b.get(sleeper.id).pid is not None, message="B's tasks run")
            before = {t: (b.get(t), b.events(t)) for t in (sleeper.id, reporter.id)}

            errors: list[str] = []
            loop = threading.Thread(target=_steer_in_a_loop,
                                    args=(home_a, dsn_a, ROUNDS, errors))
            loop.start()
            # B steers its reporter meanwhile; the sleeper is left alone.
            for _ in range(ROUNDS // 2):
                _ok(client_b, dsn_b, "pause", str(reporter.id))
                _ok(client_b, dsn_b, "resume", str(reporter.id))
            loop.join(timeout=600)
            assert not loop.is_alive() and errors == []

            task, events = before[sleeper.id]
            assert b.get(sleeper.id) == task, "B's untouched task is as it was"
            assert b.events(sleeper.id) == events
            assert [a.epoch for a in b.attempts(sleeper.id)] == [1]
            assert b.get(reporter.id).status is Status.RUNNING
            assert [a.epoch for a in b.attempts(reporter.id)] == [1]
            for task_id in (sleeper.id, reporter.id):
                _ok(client_b, dsn_b, "pause", str(task_id))
                _ok(client_b, dsn_b, "resume", str(task_id))
                _ok(client_b, dsn_b, "kill", str(task_id))
                done = b.wait(task_id, timeout=30)
                assert done is not None and done.status is Status.STOPPED
        with Yard(home_a, store=dsn_a) as a:
            assert len(a.list()) == ROUNDS
            assert all(t.status is Status.STOPPED for t in a.list())
    finally:
        for proc in servers:
            stop_server(proc)
