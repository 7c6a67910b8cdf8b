"""Function tasks from the command line, as a user drives them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskyard.testing import server_process, stop_server, wait_for

from .test_cli import ok, user_error

TASKS = Path(__file__).parent.parent / "integration" / "tasks_pkg"


@pytest.fixture
def served(home: Path):  # type: ignore[no-untyped-def]
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS))
    proc = server_process(home, "--slots", "2", "--import", "ty_tasks", env=env)
    try:
        yield home
    finally:
        stop_server(proc)


def test_submit_result_signal_config_watch(served: Path) -> None:
    task_id = ok(served, "submit", "--function", "add", "--kwargs", '{"a": 20, "b": 22}').strip()
    assert ok(served, "wait", task_id) == ""
    assert ok(served, "result", task_id).strip() == "42"
    assert "add(" in ok(served, "ls")
    shown = json.loads(ok(served, "show", task_id, "--json"))
    assert (shown["function"], shown["kwargs"], shown["result"]) == ("add", {"a": 20, "b": 22},
                                                                     42)
    waiting = ok(served, "submit", "--function", "wait_config").strip()
    wait_for(lambda: json.loads(ok(served, "show", waiting, "--json"))["status"] == "running")
    assert json.loads(ok(served, "config", waiting, "set", "speed=2", 'label="x"')) == {
        "speed": 2, "label": "x"}
    assert json.loads(ok(served, "config", waiting, "get"))["speed"] == 2
    watched = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(served), "watch",
                              waiting, "--timeout", "30"], capture_output=True, timeout=60)
    assert watched.returncode == 0, watched.stderr
    sig = ok(served, "submit", "--function", "wait_signal").strip()
    assert "sent" in ok(served, "signal", sig, "go", "--data", '[1, "two"]')
    ok(served, "wait", sig)
    assert json.loads(ok(served, "result", sig)) == [1, "two"]
    user_error(served, "signal", sig, "late")
    user_error(served, "config", sig, "set", "a=1")
    stop = ok(served, "submit", "--function", "graceful").strip()
    wait_for(lambda: json.loads(ok(served, "show", stop, "--json"))["status"] == "running")
    assert "asked to stop" in ok(served, "kill", stop, "--graceful")
    ok(served, "wait", stop)
    boom = ok(served, "submit", "--function", "boom", "--kwargs", '{"width": 3}').strip()
    assert subprocess.run([sys.executable, "-m", "taskyard", "--home", str(served), "wait",
                           boom]).returncode == 1
    assert "ValueError: bad width 3" in user_error(served, "result", boom)


@pytest.mark.parametrize("args", [
    ["submit", "--function", "add", "--kwargs", "[1]"],
    ["submit", "--function", "add", "--kwargs", "{bad"],
    ["submit", "--function", "add", "--kwargs", '{"a": NaN}'],
    ["submit", "--function", "add", "--kwargs", '{"a": Infinity}'],
    ["submit", "--function", "add", "--kwargs", '{"a": 99999999999999999999}'],
    ["submit", "--function", "add", "--kwargs", "@BIG"],
    ["submit", "--function", "add", "--", "echo", "hi"],
    ["submit", "--kwargs", "{}", "--", "echo"],
    ["submit", "--function", "", "--kwargs", "{}"],
    ["result", "1"],
    ["signal", "1", "x", "--data", "{nope"],
    ["config", "1", "set"],
    ["config", "1", "set", "novalue"],
    ["config", "1", "set", "a=NaN"],
    ["config", "1", "get", "a=1"],
    ["kill", "1", "--graceful"],
])
def test_bad_function_input_is_one_line_exit_2(home: Path, tmp_path: Path,
                                               args: list[str]) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"a": "x" * (1024 * 1024)}))  # over the 1 MiB cap
    ok(home, "submit", "--", "true")
    user_error(home, *[f"@{big}" if a == "@BIG" else a for a in args])
    assert len(json.loads(ok(home, "ls", "--json"))["items"]) == 1
