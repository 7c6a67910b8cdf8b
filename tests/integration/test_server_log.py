"""The server log: a line per task transition, structured server lines, text or JSON,
no line forged by what a task controls, log_file (``-``, moved away, rotated by size),
and the Yard's own logger."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from taskyard import Yard
from taskyard.errors import ConfigError
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store import open_store
from taskyard.testing import cli, running_server, server_process, stop_server, wait_for

EVIL = "x\n2026-01-01 INFO forged\x1b[31m"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def _json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in _lines(path)]


def _transitions(path: Path, task_id: int) -> list[tuple[object, object]]:
    return [(r.get("from"), r.get("to")) for r in _json_lines(path)
            if r.get("event") == "transition" and r.get("task") == task_id]


def _ran(yard: Yard, argv: list[str]) -> int:
    task = yard.submit(argv)
    done = yard.wait(task.id, timeout=20)
    assert done is not None and done.status in (Status.SUCCEEDED, Status.FAILED)
    return task.id


def test_json_lines_parse_and_carry_each_transition(home: Path) -> None:
    log = home / "server.log"  # the foreground server's standard error
    with running_server(home, "--log-format", "json"), Yard(home) as yard:
        task_id = _ran(yard, ["true"])
        wait_for(lambda: ("running", "succeeded") in _transitions(log, task_id),
                 message="the transition to succeeded in the log")
    lines = _json_lines(log)  # every line parses
    assert _transitions(log, task_id) == [(None, "queued"), ("queued", "running"),
                                          ("running", "succeeded")]
    ended = next(r for r in lines if r.get("to") == "succeeded")
    assert ended["attempt"] == 1 and str(ended["by"]).startswith("server:")
    assert {"time", "level", "logger", "message", "reason", "name", "at"} <= set(ended)
    events = [r.get("event") for r in lines]
    assert events[0] == "server.start" and events[-1] == "server.stop"
    start = lines[0]
    assert start["pid"] and start["host"] and start["server"]


@pytest.mark.parametrize("kind", ["text", "json"])
def test_what_a_task_controls_cannot_forge_a_line(home: Path, kind: str) -> None:
    """A name (written straight to the store: the CLI and API refuse it) and an argv
    with a newline and ANSI codes, which also reaches the log in a spawn failure."""
    log = home / "server.log"
    store = open_store(home / "taskyard.db")
    named = store.submit(TaskSpec(argv=("true",), name=EVIL), by=EVIL)
    store.close()
    with running_server(home, "--log-format", kind), Yard(home) as yard:
        wait_for(lambda: yard.get(named.id).status is Status.SUCCEEDED)
        spawn = _ran(yard, ["/nonexistent/" + EVIL])
        wait_for(lambda: f"task {spawn} attempt 1: running -> failed" in log.read_text()
                 or f'"task": {spawn}, "attempt": 1, "from": "running"' in log.read_text())
    raw = log.read_bytes()
    assert b"\x1b" not in raw and b"\n2026-01-01" not in raw
    for line in _lines(log):
        if kind == "json":
            json.loads(line)
        else:
            assert TEXT_LINE.match(line), line
    if kind == "json":
        names = [r.get("name") for r in _json_lines(log) if r.get("task") == named.id]
        assert EVIL in names  # the name is all there, as JSON escapes
    else:
        assert 'name="x\\n2026-01-01 INFO forged\\x1b[31m"' in raw.decode()
        assert "/nonexistent/x\\n2026-01-01 INFO forged\\x1b[31m" in raw.decode()


def test_a_moved_log_file_is_reopened(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "taskyard.log"
    log.parent.mkdir()
    with running_server(home, "--log-format", "json", "--log-file", str(log)), \
            Yard(home) as yard:
        first = _ran(yard, ["true"])
        wait_for(lambda: ("running", "succeeded") in _transitions(log, first))
        os.rename(log, log.with_name("taskyard.log.old"))  # what logrotate does
        second = _ran(yard, ["true"])
        wait_for(lambda: ("running", "succeeded") in _transitions(log, second),
                 message="new lines in a new file at the path")
    assert _transitions(log.with_name("taskyard.log.old"), second) == []
    assert _transitions(log, first) == []
    assert (home / "server.log").read_text() == ""  # nothing went to standard error


def test_rotated_by_size_keeping_backups(home: Path) -> None:
    log = home / "rotating.log"
    env = dict(os.environ, TASKYARD_LOG_MAX_MIB="0.001", TASKYARD_LOG_BACKUPS="2")
    proc = server_process(home, "--log-file", str(log), env=env)
    try:
        with Yard(home) as yard:
            ids = [_ran(yard, ["true"]) for _ in range(20)]
            wait_for(lambda: f"task {ids[-1]} attempt 1: running -> succeeded"
                     in log.read_text())
    finally:
        stop_server(proc)
    backups = [log.with_name(f"rotating.log.{n}") for n in (1, 2)]
    assert all(p.exists() for p in backups)
    assert not log.with_name("rotating.log.3").exists()
    for path in [log, *backups]:
        assert path.stat().st_size <= 0.001 * 1024 * 1024
        assert all(TEXT_LINE.match(line) for line in _lines(path))


def test_dash_is_standard_error(home: Path, tmp_path: Path) -> None:
    """``--log-file -`` wins over a path from the environment: lines go to stderr."""
    elsewhere = tmp_path / "not-this.log"
    env = dict(os.environ, TASKYARD_LOG_FILE=str(elsewhere))
    proc = server_process(home, "--log-file", "-", env=env)
    stop_server(proc)
    assert "started" in (home / "server.log").read_text()  # the child's stderr
    assert not elsewhere.exists()


def test_daemonized_server_log_follows_a_move(home: Path) -> None:
    log = home / "server.log"
    assert cli(home, "server", "start", "--no-web", "--log-format", "json").returncode == 0
    try:
        with Yard(home) as yard:
            first = _ran(yard, ["true"])
            wait_for(lambda: ("running", "succeeded") in _transitions(log, first))
            os.rename(log, home / "server.log.1")
            second = _ran(yard, ["true"])
            wait_for(lambda: ("running", "succeeded") in _transitions(log, second))
    finally:
        cli(home, "server", "stop", "--now")
    assert _json_lines(log)[-1]["event"] == "server.stop"


def test_bad_log_settings_are_one_line(home: Path) -> None:
    for args in (["--log-format", "xml"], ["--log-file", str(home / "no" / "such.log")],
                 ["--log-file", "-"]):
        result = cli(home, "server", "start", "--no-web", *args)
        assert result.returncode == 2, result
        assert len(result.stderr.decode().strip().splitlines()) == 1, result.stderr


def test_an_id_given_again_after_a_removal_is_logged(home: Path) -> None:
    """SQLite gives the ids of deleted events again: removing the newest task deletes
    its events, and the next task's events take their ids."""
    log = home / "server.log"
    with running_server(home, "--log-format", "json"), Yard(home) as yard:
        first = _ran(yard, ["true"])
        wait_for(lambda: ("running", "succeeded") in _transitions(log, first))
        yard.rm(first)
        second = _ran(yard, ["true"])
        wait_for(lambda: ("running", "succeeded") in _transitions(log, second),
                 message="the transitions of the task after the removal")
    assert _transitions(log, second) == [(None, "queued"), ("queued", "running"),
                                         ("running", "succeeded")]


def test_the_yard_logs_to_the_logger_it_was_given(home: Path) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("embedding.app")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    with Yard(home, logger=logger) as yard:
        task = yard.submit(["true"], name="n")
        yard.rm(task.id, force=True)
    assert [(r.event, r.fields["task"]) for r in seen] == [  # type: ignore[attr-defined]
        ("client.submit", task.id), ("client.rm", task.id)]
    assert seen[0].getMessage() == f'submit task {task.id} name="n"'


def test_a_yard_given_no_logger_refuses_it_before_writing_anything(home: Path) -> None:
    """A logger name given by mistake was taken, and the first submit wrote its task,
    then failed with an AttributeError: now a ConfigError naming logger, nothing written."""
    with pytest.raises(ConfigError, match="logger must be a logging.Logger") as raised:
        Yard(home, logger="embedding.app")  # type: ignore[arg-type]
    assert raised.value.field == "logger"
    with Yard(home) as yard:
        assert list(yard.list()) == []


def test_two_servers_on_postgres_log_each_transition_once(tmp_path: Path, pg_dsn: str) -> None:
    """Each server logs what it did; the cron-lease holder also what clients did."""
    env = dict(os.environ, TASKYARD_STORE=pg_dsn, TASKYARD_HEARTBEAT_INTERVAL="0.3",
               TASKYARD_LEASE="3", TASKYARD_POLL_INTERVAL="0.5")
    homes = [tmp_path / "a", tmp_path / "b"]
    procs = [server_process(h, "--slots", "2", "--log-format", "json", env=env) for h in homes]

    def logged() -> list[tuple[object, object, object]]:
        return [(r["task"], r["from"], r["to"]) for h in homes
                for r in _json_lines(h / "server.log") if r.get("event") == "transition"]

    try:
        with Yard(tmp_path / "client", store=pg_dsn) as yard:
            ids = [yard.submit(["true"]).id for _ in range(20)]
            for task_id in ids:
                assert yard.wait(task_id, timeout=30) is not None
            wait_for(lambda: len(logged()) >= 60, timeout=20, message="60 transition lines")
    finally:
        for proc in procs:
            stop_server(proc)
    lines = logged()
    assert sorted(lines, key=str) == sorted(
        [(i, f, t) for i in ids for f, t in ((None, "queued"), ("queued", "running"),
                                             ("running", "succeeded"))], key=str)
