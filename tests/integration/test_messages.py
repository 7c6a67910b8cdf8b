"""Messages from real tasks: a command's TASKYARD_MESSAGES_FD and `taskyard emit`, a
function's ctx.emit; read while the task runs and after (CLI, Yard, HTTP and its live
stream), bounded by messages_tail, resumed with --since, followed with --follow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Status, Yard
from taskyard.messages import HEAD
from taskyard.testing import (
    cli,
    make_token,
    server_process,
    stop_server,
    wait_for,
    web_process,
)

TASKS = Path(__file__).parent / "tasks_pkg"
BIN = str(Path(sys.executable).parent)
#: a command task that emits on the descriptor, with `taskyard emit`, then waits for stdin
SCRIPT = ("echo '{\"step\": 1}' >&$TASKYARD_MESSAGES_FD; echo 'plain words' >&$TASKYARD_MESSAGES_FD;"
          " taskyard emit '[2]'; cat >/dev/null; echo '\"after\"' >&$TASKYARD_MESSAGES_FD")


@pytest.fixture
def yard(home: Path) -> Iterator[Yard]:
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS), TASKYARD_IMPORTS="ty_tasks",
               TASKYARD_MESSAGES_TAIL="7")
    proc = server_process(home, "--slots", "2", env=env)
    try:
        with Yard(home) as y:
            yield y
    finally:
        stop_server(proc)


def _values(y: Yard, task_id: int, since: int = 0) -> list[object]:
    return [m.value for m in y.messages(task_id, since).items]


def test_a_command_emits_on_its_descriptor_and_with_taskyard_emit(yard: Yard,
                                                                   home: Path) -> None:
    task = yard.submit(["sh", "-c", SCRIPT], stdin_open=True,
                       env={"PATH": f"{BIN}:/usr/bin:/bin"})
    wait_for(lambda: len(_values(yard, task.id)) == 3, timeout=20, message="3 messages")
    read = yard.messages(task.id)
    assert [(m.number, m.value, m.raw) for m in read.items] == [
        (0, {"step": 1}, False), (1, {"text": "plain words"}, True), (2, [2], False)]
    assert not read.finished and read.next == 3
    follower = subprocess.Popen([sys.executable, "-m", "taskyard", "--home", str(home),
                                 "messages", str(task.id), "--since", "1", "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yard.send(task.id, b"go\n", eof=True)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out.decode().splitlines() == ['{"text":"plain words"}', "[2]", '"after"']
    ended = yard.wait(task.id, timeout=20)
    assert ended is not None and ended.status is Status.SUCCEEDED
    records = json.loads(cli(home, "messages", str(task.id), "--json").stdout)
    assert records["total"] == 4 and records["finished"] and records["items"][1]["raw"]
    since = cli(home, "messages", str(task.id), "--since", "3")
    assert since.stdout == b'"after"\n'


def test_a_function_emits_and_the_bound_keeps_head_and_tail(yard: Yard, home: Path) -> None:
    task = yard.submit_function("emit_then_wait", {"n": HEAD + 20})
    wait_for(lambda: yard.messages(task.id).total == HEAD + 20, timeout=60,
             message="every message emitted")
    read = yard.messages(task.id, HEAD - 1)
    assert [m.number for m in read.items] == [HEAD - 1, *range(HEAD + 13, HEAD + 20)]
    assert read.dropped == 13 and not read.finished
    yard.signal(task.id, "done")
    assert yard.wait(task.id, timeout=30) is not None
    out = cli(home, "messages", str(task.id), "--since", str(HEAD - 1))
    assert out.stdout.decode().splitlines() == ['{"i":999}', *(json.dumps({"i": i}).replace(
        " ", "") for i in range(HEAD + 13, HEAD + 20))]
    assert b"were dropped" in out.stderr


def test_over_size_and_non_json_lines_are_kept_flagged(yard: Yard) -> None:
    script = ("head -c 1100000 /dev/zero | tr '\\0' 'y' >&$TASKYARD_MESSAGES_FD;"
              " echo >&$TASKYARD_MESSAGES_FD; printf 'tail' >&$TASKYARD_MESSAGES_FD")
    task = yard.submit(["sh", "-c", script])
    assert yard.wait(task.id, timeout=20) is not None
    items = yard.messages(task.id).items
    assert [m.raw for m in items] == [True, True]
    assert items[0].value["cut"] == 1100000 and items[0].value["text"] == "y" * 4096
    assert items[1].value == {"text": "tail"}


def test_bad_input_is_one_line_and_exit_2(yard: Yard, home: Path) -> None:
    outside = cli(home, "emit", "1")
    assert outside.returncode == 2 and outside.stderr.count(b"\n") == 1
    task = yard.submit(["sh", "-c", "taskyard emit 'not json'; echo $? >&2;"
                        " taskyard emit @/dev/stdin </dev/null; echo $? >&2"],
                       env={"PATH": f"{BIN}:/usr/bin:/bin"})
    assert yard.wait(task.id, timeout=20) is not None
    lines = yard.logs(task.id, "stderr").data.decode().splitlines()
    assert lines[1] == "2" and "message" in lines[0], lines
    assert yard.messages(task.id).total == 0
    for args in (["--since", "-1"], ["--attempt", "9"], ["--attempt", "0"]):
        out = cli(home, "messages", str(task.id), *args)
        assert out.returncode == 2 and out.stderr.count(b"\n") == 1, out.stderr
    for command in ("messages", "logs"):  # the attempt is named, not the task id
        err = cli(home, command, str(task.id), "--attempt", "0").stderr.decode()
        assert "--attempt: must be 1 or more" in err and "task id" not in err, err


def test_emit_from_an_attempt_that_ended_is_exit_2(yard: Yard, home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A script run again by hand with an ended attempt's variables: refused as
    `taskyard report` and `progress` refuse it (exit 2, one line), nothing written."""
    task = yard.submit(["true"])
    assert yard.wait(task.id, timeout=20) is not None
    monkeypatch.setenv("TASKYARD_TASK_ID", str(task.id))
    monkeypatch.setenv("TASKYARD_ATTEMPT", "1")
    out = cli(home, "emit", '{"late": 1}')
    err = out.stderr.decode()
    assert out.returncode == 2 and err.count("\n") == 1 and "not running" in err, err
    assert yard.messages(task.id).total == 0


def test_http_reads_and_streams_messages(yard: Yard, home: Path) -> None:
    task = yard.submit(["sh", "-c", SCRIPT], stdin_open=True,
                       env={"PATH": f"{BIN}:/usr/bin:/bin"})
    wait_for(lambda: yard.messages(task.id).total == 3, timeout=20, message="3 messages")
    token = make_token(home, "viewer")
    with web_process(home) as base:
        def get(path: str, **headers: str) -> urllib.request.Request:
            return urllib.request.Request(base + path, headers={
                "Authorization": f"Bearer {token}", **headers})

        with urllib.request.urlopen(get(f"/api/v1/tasks/{task.id}/messages?since=1")) as a:
            page = json.load(a)
        assert [i["n"] for i in page["items"]] == [1, 2] and page["next"] == 3
        live = urllib.request.urlopen(get(f"/api/v1/tasks/{task.id}/messages/live",
                                          **{"Last-Event-ID": "1"}), timeout=30)
        yard.send(task.id, b"go\n", eof=True)
        body = live.read().decode()
        ids = [line[4:] for line in body.splitlines() if line.startswith("id: ")]
        assert ids == ["2", "3"] and "event: end" in body, body
        try:
            urllib.request.urlopen(get(f"/api/v1/tasks/{task.id}/messages?since=-1"))
        except urllib.error.HTTPError as exc:
            assert exc.code == 422
        else:
            raise AssertionError("since=-1 was accepted")
