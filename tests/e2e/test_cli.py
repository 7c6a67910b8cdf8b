"""The CLI as a user drives it: exit codes, one-line errors, JSON, and nothing lost."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard.testing import cli, running_server, server_process, stop_server, wait_for

TY = f"{shlex.quote(sys.executable)} -m taskyard"  # taskyard as a task runs it


def ok(home: Path, *args: str, input: bytes | None = None) -> str:
    result = cli(home, *args, input=input)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def show(home: Path, task_id: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(ok(home, "show", task_id, "--json"))
    return data


def user_error(home: Path, *args: str, code: int = 2) -> str:
    """Run a command that must fail with ``code`` and one line on stderr, no traceback."""
    result = cli(home, *args)
    err = result.stderr.decode()
    assert result.returncode == code, (result.returncode, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("taskyard")
    return err


@pytest.fixture
def served(home: Path) -> Iterator[Path]:
    with running_server(home, "--slots", "2", "--kill-grace", "2"):
        yield home


def test_submit_without_a_server_is_durable_then_runs(home: Path) -> None:
    task_id = ok(home, "submit", "--name", "greet", "--", "echo", "hello world").strip()
    assert show(home, task_id)["status"] == "queued"
    with running_server(home):
        assert cli(home, "wait", task_id, "--timeout", "10").returncode == 0
    assert ok(home, "logs", task_id) == "hello world\n"
    data = show(home, task_id)
    for key in ("id", "name", "queue", "status", "reason", "exit_code", "signal", "argv", "cwd",
                "meta", "progress", "attempt", "pid", "created_at", "started_at", "finished_at",
                "attempts", "events"):
        assert key in data
    assert data["status"] == "succeeded" and data["name"] == "greet"
    assert str(data["created_at"]).endswith("Z")


def test_shell_metacharacters_are_literal(served: Path) -> None:
    task_id = ok(served, "submit", "--", "echo", "$(id); rm -rf /").strip()
    assert cli(served, "wait", task_id, "--timeout", "10").returncode == 0
    assert ok(served, "logs", task_id) == "$(id); rm -rf /\n"


def test_json_everywhere(served: Path) -> None:
    task = json.loads(ok(served, "submit", "--json", "--meta", '{"team": "a"}', "--env", "X=1",
                         "--", "sh", "-c", "echo $X $TASKYARD_TASK_ID"))
    assert task["meta"] == {"team": "a"} and task["env_keys"] == ["X"]
    assert cli(served, "wait", str(task["id"]), "--timeout", "10").returncode == 0
    assert ok(served, "logs", str(task["id"])) == f"1 {task['id']}\n"
    listed = json.loads(ok(served, "ls", "--json"))
    assert [t["id"] for t in listed["items"]] == [task["id"]]
    assert listed["next_cursor"] is None and listed["partial"] is False
    assert json.loads(ok(served, "ls", "--json", "--status", "queued"))["items"] == []
    assert json.loads(ok(served, "server", "status", "--json"))["running"] is True
    read = json.loads(ok(served, "logs", str(task["id"]), "--json", "--offset", "2"))
    assert (read["data"], read["offset"], read["next_offset"], read["total"]) == (
        f"{task['id']}\n", 2, read["total"], len(f"1 {task['id']}\n"))
    user_error(served, "logs", str(task["id"]), "--json", "--follow")
    assert json.loads(ok(served, "queue", "pause", "q", "--json"))["paused"] is True
    assert json.loads(ok(served, "queue", "set", "q", "--parallel", "2",
                         "--json"))["parallel"] == 2
    assert "[Service]" in json.loads(ok(served, "server", "unit", "--json"))["unit"]
    slow = ok(served, "submit", "--", "sleep", "30").strip()
    timed_out = cli(served, "wait", slow, "--timeout", "0.1", "--json")
    assert timed_out.returncode == 124 and json.loads(timed_out.stdout)["timed_out"] is True
    assert json.loads(ok(served, "watch", str(task["id"]), "--json"))["status"] == "succeeded"
    ok(served, "kill", slow)
    assert cli(served, "wait", slow, "--timeout", "10").returncode == 1
    assert json.loads(ok(served, "rm", slow, "--json")) == {"id": int(slow), "deleted": True}


def test_wait_exit_codes(served: Path) -> None:
    good = ok(served, "submit", "--", "true").strip()
    bad = ok(served, "submit", "--", "false").strip()
    slow = ok(served, "submit", "--", "sleep", "30").strip()
    assert cli(served, "wait", good, "--timeout", "10").returncode == 0
    assert cli(served, "wait", bad, "--timeout", "10").returncode == 1
    assert cli(served, "wait", slow, "--timeout", "0.2").returncode == 124
    ok(served, "kill", slow)
    assert cli(served, "wait", slow, "--timeout", "10").returncode == 1
    assert show(served, slow)["reason"] == "killed"


def test_controls_and_wrong_states(served: Path) -> None:
    task_id = ok(served, "submit", "--", "sleep", "30").strip()
    wait_for(lambda: show(served, task_id)["pid"], message="started")
    user_error(served, "resume", task_id)
    assert "paused" in ok(served, "pause", task_id)
    user_error(served, "pause", task_id)
    assert "running" in ok(served, "resume", task_id)
    user_error(served, "kill", task_id, "--signal", "SIGFOO")
    user_error(served, "rm", task_id)
    ok(served, "kill", task_id, "--signal", "KILL")
    assert cli(served, "wait", task_id, "--timeout", "10").returncode == 1
    data = show(served, task_id)
    assert (data["status"], data["signal"]) == ("stopped", 9)
    user_error(served, "kill", task_id)
    user_error(served, "pause", task_id)
    ok(served, "restart", task_id)
    wait_for(lambda: show(served, task_id)["attempt"] == 2 and show(served, task_id)["pid"])
    ok(served, "rm", task_id, "--force")
    user_error(served, "show", task_id)


def test_killing_a_queued_task_stops_it_before_it_starts(home: Path) -> None:
    task_id = ok(home, "submit", "--", "touch", str(home / "ran")).strip()
    assert "stopped" in ok(home, "kill", task_id)
    with running_server(home):
        assert show(home, task_id)["status"] == "stopped"
        later = ok(home, "submit", "--", "true").strip()
        assert cli(home, "wait", later, "--timeout", "10").returncode == 0
    assert not (home / "ran").exists()


def test_stdin_file_and_send(served: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(b"from a file\n")
    fed = ok(served, "submit", "--stdin-file", str(src), "--", "cat").strip()
    assert cli(served, "wait", fed, "--timeout", "10").returncode == 0
    assert ok(served, "logs", fed) == "from a file\n"
    live = ok(served, "submit", "--stdin-open", "--", "cat").strip()
    wait_for(lambda: show(served, live)["pid"], message="started")
    ok(served, "send", live, "line one\n")
    ok(served, "send", live, "\udcff\n")  # stdin data is bytes: not UTF-8 is fine here
    ok(served, "send", live, "-", "--eof", input=b"line two\n")
    assert cli(served, "wait", live, "--timeout", "10").returncode == 0
    assert cli(served, "logs", live).stdout == b"line one\n\xff\nline two\n"
    user_error(served, "send", fed, "x")


def test_meta_and_progress(served: Path) -> None:
    task_id = ok(served, "submit", "--meta", '{"a": 1, "b": 2}', "--", "sh", "-c",
                 f'{TY} progress 3 10 "three of ten" && sleep 30').strip()
    assert json.loads(ok(served, "meta", task_id, '{"b": null, "c": [1]}')) == {"a": 1, "c": [1]}
    wait_for(lambda: show(served, task_id)["progress"] == {"done": 3, "total": 10,
                                                            "message": "three of ten"})
    ok(served, "kill", task_id)


def test_progress_outside_a_task_and_negative(served: Path) -> None:
    user_error(served, "progress", "1", "2")
    task_id = ok(served, "submit", "--", "sh", "-c", f"{TY} progress -- -1 10; echo $?").strip()
    assert cli(served, "wait", task_id, "--timeout", "20").returncode == 0
    assert ok(served, "logs", task_id).strip() == "2"
    assert "progress" in ok(served, "logs", task_id, "--stream", "stderr")


@pytest.mark.parametrize("args", [
    ["show", "999"],
    ["show", "abc"],
    ["show", "../../etc/passwd"],
    ["kill", "999"],
    ["submit"],
    ["submit", "--"],
    ["submit", "--env", "=x", "--", "true"],
    ["submit", "--env", "NOVALUE", "--", "true"],
    ["submit", "--meta", "[1]", "--", "true"],
    ["submit", "--meta", "{bad", "--", "true"],
    ["submit", "--meta", '{"a": NaN}', "--", "true"],
    ["submit", "--stdin-file", "/no/such/file", "--", "cat"],
    ["submit", "--name", "a\nb", "--", "true"],
    ["meta", "1", "not json"],
    ["ls", "--status", "nope"],
    ["logs", "1", "--offset", "-5"],
    ["wait", "1", "--timeout", "soon"],
    ["submit", "--timeout", "-1", "--", "true"],
    ["submit", "--in", "soon", "--", "true"],
    ["submit", "--at", "tomorrow", "--", "true"],
    ["submit", "--at", "2026-11-23T10:00:00Z", "--in", "1m", "--", "true"],
    ["submit", "--priority", "high", "--", "true"],
    ["submit", "--retries", "2", "--retry-on", "exit,bogus", "--", "true"],
    ["submit", "--retries", "-1", "--", "true"],
    ["submit", "--backoff", "linear", "--", "true"],
    ["submit", "--after", "999", "--", "true"],
    ["submit", "--after", "1,x", "--", "true"],
    ["submit", "--unique", "", "--", "true"],
    ["queue", "pause", ""],
    ["queue", "frob"],
    ["submit", "--priority", "99999999999", "--", "true"],
    ["submit", "--timeout", "0", "--", "true"],
    ["frobnicate"],
    ["submit", "--tenant", "nobody", "--", "true"],
    ["submit", "--mutex", "", "--", "true"],
    ["queue", "set", "q", "--parallel", "0"],
    ["queue", "set", "q"],
    ["tenant", "enable", "nobody"],
    ["tenant", "add", "t", "--run-as", "-rf"],
    ["tenant", "add", "t", "--parallel", "-2"],
    ["tenant", "add", "default"],
    ["cron", "add", "c", "61 * * * *", "--", "true"],
    ["cron", "add", "c", "* * *", "--", "true"],
    ["cron", "add", "c", "*/0 * * * *", "--", "true"],
    ["cron", "add", "c", "5-1 * * * *", "--", "true"],
    ["cron", "add", "c", "\u0663 * * * *", "--", "true"],
    ["cron", "add", "c", "* " * 5000, "--", "true"],
    ["cron", "add", "c", "0 0 31 2 *", "--", "true"],
    ["cron", "add", "c", "@reboot", "--", "true"],
    ["cron", "add", "c", "* * * * *", "--tz", "Mars/Olympus", "--", "true"],
    ["cron", "add", "c", "* * * * *", "--tz", "../etc/passwd", "--", "true"],
    ["cron", "add", "c", "* * * * *", "--catch-up", "some", "--", "true"],
    ["cron", "add", "c", "* * * * *", "--max-lag", "-1", "--", "true"],
    ["cron", "add", "c", "* * * * *"],
    ["cron", "add", "c", "* * * * *", "--in", "1m", "--", "true"],
    ["cron", "rm", "nope"],
    ["cron", "run", "nope"],
    ["cron", "pause", "nope"],
    # bytes that are not UTF-8 (lone surrogates once decoded) and JSON lone surrogates
    ["submit", "--", "echo", "\udcff\udcfe"],
    ["submit", "--env", "A=\udcff", "--", "true"],
    ["submit", "--name", "\udcff", "--", "true"],
    ["submit", "--meta", '{"a": "\\ud800"}', "--", "true"],
    ["submit", "--meta", '{"\\ud800": 1}', "--", "true"],
    ["meta", "1", '{"a": "\\udfff"}'],
    ["ls", "--queue", "\udcff"],
    ["tenant", "enable", "\udcff"],
    ["cron", "show", "\udcff"],
    ["queue", "set", "q\udcff", "--parallel", "1"],
    # start times ISO 8601 cannot show
    ["submit", "--at", "9999-12-31T23:59:59-12:00", "--", "true"],
    ["submit", "--in", "99999999d", "--", "true"],
    ["submit", "--after", "", "--", "true"],
    ["submit", "--after", "1,", "--", "true"],
    ["submit", "--after", "1,,1", "--", "true"],
    ["kill", "1", "--graceful"],
    ["kill", "1", "--graceful", "--signal", "KILL"],
    ["signal", "1", "go"],
    ["--home", "", "ls"],
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(home: Path, args: list[str]) -> None:
    ok(home, "submit", "--", "true")
    user_error(home, *args)
    assert len(json.loads(ok(home, "ls", "--json"))["items"]) == 1


def test_a_double_dash_inside_the_command_is_the_commands(home: Path) -> None:
    """``submit git checkout -- FILE``: once the command has begun, ``--`` is its own."""
    for args in (["echo", "--", "hi"], ["--", "echo", "--", "hi"]):
        task = json.loads(ok(home, "submit", "--json", *args))
        assert task["argv"] == ["echo", "--", "hi"], args
    ok(home, "cron", "add", "cx", "@daily", "echo", "a", "--", "b")
    assert json.loads(ok(home, "cron", "show", "cx", "--json"))["task"]["argv"] == [
        "echo", "a", "--", "b"]


def test_a_home_that_is_a_file_or_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "not a directory" in user_error(afile, "ls")
    err = user_error(afile / "sub", "ls", code=1)
    assert "cannot open store" in err and "internal error" not in err


def test_rm_force_refused_for_a_task_others_wait_for_changes_nothing(home: Path) -> None:
    first = ok(home, "submit", "--in", "1h", "--", "true").strip()
    second = ok(home, "submit", "--after", first, "--", "true").strip()
    assert "waits for it" in user_error(home, "rm", "--force", first)
    assert (show(home, first)["status"], show(home, second)["status"]) == ("scheduled",
                                                                           "scheduled")


def test_graceful_stop_and_custom_signals_are_for_function_tasks(served: Path) -> None:
    task_id = ok(served, "submit", "--", "sleep", "30").strip()
    wait_for(lambda: show(served, task_id)["pid"], message="started")
    assert "function tasks" in user_error(served, "kill", task_id, "--graceful")
    assert "function tasks" in user_error(served, "signal", task_id, "go")
    assert show(served, task_id)["status"] == "running"
    ok(served, "kill", task_id)


def test_a_control_no_server_answers_in_time_exits_1_and_is_applied_later(
        home: Path) -> None:
    """Not a user error (2): the request is recorded, and applied once the server can."""
    proc = server_process(home, "--slots", "1")
    try:
        task_id = ok(home, "submit", "--", "sleep", "30").strip()
        wait_for(lambda: show(home, task_id)["pid"], message="started")
        proc.send_signal(signal.SIGSTOP)
        try:
            result = cli(home, "kill", task_id, "--timeout", "0.5")
        finally:
            proc.send_signal(signal.SIGCONT)
        assert result.returncode == 1 and b"recorded" in result.stderr, result.stderr
        wait_for(lambda: show(home, task_id)["status"] == "stopped", message="applied later")
    finally:
        stop_server(proc)


def test_output_to_a_closed_pipe_exits_0(home: Path) -> None:
    task_id = ok(home, "submit", "--", "true").strip()
    for args in (["show", task_id], ["ls"], ["show", task_id, "--json"]):
        line = " ".join(shlex.quote(a) for a in [*TY.split(), "--home", str(home), *args])
        done = subprocess.run(["bash", "-c", f"{line} | head -c1 >/dev/null;"
                               " echo ${PIPESTATUS[0]}"], capture_output=True, check=True)
        assert done.stdout.strip() == b"0", (args, done.stderr)


def test_status_and_stop_with_a_broken_taskyard_toml(home: Path) -> None:
    assert "started" in ok(home, "server", "start", "--slots", "1")
    try:
        (home / "taskyard.toml").write_text("[server\n")
        result = cli(home, "server", "status")
        assert result.returncode == 0 and b"is running" in result.stdout
        assert b"taskyard.toml" in result.stderr
        err = user_error(home, "server", "stop")
        assert "taskyard.toml" in err and "kill " in err
    finally:
        (home / "taskyard.toml").unlink()
        assert "stopped" in ok(home, "server", "stop")


def test_limits_tenants_and_cron_from_the_cli(home: Path) -> None:
    assert "parallel 1" in ok(home, "queue", "set", "serial", "--parallel", "1")
    queues = {q["name"]: q for q in json.loads(ok(home, "queue", "ls", "--json"))}
    assert queues["serial"]["parallel"] == 1
    assert "unlimited" in ok(home, "queue", "set", "serial", "--parallel", "unlimited")
    assert "disabled" in ok(home, "tenant", "add", "acme", "--disabled", "--parallel", "2")
    task = json.loads(ok(home, "submit", "--json", "--tenant", "acme", "--mutex", "db", "--",
                         "true"))
    assert (task["tenant"], task["mutex"]) == ("acme", "db")
    tenants = {t["name"]: t for t in json.loads(ok(home, "tenant", "ls", "--json"))}
    assert tenants["acme"]["tasks"]["queued"] == 1 and tenants["acme"]["parallel"] == 2
    assert "enabled" in ok(home, "tenant", "enable", "acme")
    assert "acme" in ok(home, "tenant", "ls")
    sched = json.loads(ok(home, "cron", "add", "nightly", "30 2 * * *", "--tz",
                          "Europe/Berlin", "--queue", "night", "--json", "--", "echo", "-n"))
    assert sched["tz"] == "Europe/Berlin" and sched["task"]["argv"] == ["echo", "-n"]
    assert sched["task"]["queue"] == "night" and sched["next_at"] > sched["created_at"]
    assert "nightly" in ok(home, "cron", "ls")
    assert "Europe/Berlin" in ok(home, "cron", "show", "nightly")
    assert "paused" in ok(home, "cron", "pause", "nightly")
    run = json.loads(ok(home, "cron", "run", "nightly", "--json"))
    assert run["schedule"] == "nightly" and run["argv"] == ["echo", "-n"]
    assert "next" in ok(home, "cron", "resume", "nightly")
    ok(home, "cron", "rm", "nightly")
    assert json.loads(ok(home, "cron", "ls", "--json")) == []


def test_meta_over_1_mib_is_refused(home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"a": "x" * (1024 * 1024 + 10)}))
    err = user_error(home, "submit", "--meta", f"@{big}", "--", "true")
    assert "over" in err
    assert json.loads(ok(home, "ls", "--json"))["items"] == []


def test_submit_later_is_scheduled(home: Path) -> None:
    task = json.loads(ok(home, "submit", "--json", "--in", "1h", "--priority", "3", "--", "true"))
    assert task["status"] == "scheduled" and task["priority"] == 3
    assert task["run_at"] > task["created_at"]
    assert "stopped" in ok(home, "kill", str(task["id"]))


def test_unique_submits_return_the_live_task(home: Path) -> None:
    first = ok(home, "submit", "--unique", "backup", "--", "true").strip()
    assert ok(home, "submit", "--unique", "backup", "--", "false").strip() == first
    assert len(json.loads(ok(home, "ls", "--json"))["items"]) == 1


def test_queue_pause_and_resume(served: Path) -> None:
    assert "paused" in ok(served, "queue", "pause", "batch")
    task_id = ok(served, "submit", "--queue", "batch", "--", "true").strip()
    other = ok(served, "submit", "--", "true").strip()
    assert cli(served, "wait", other, "--timeout", "10").returncode == 0
    assert show(served, task_id)["status"] == "queued"
    queues = {q["name"]: q for q in json.loads(ok(served, "queue", "ls", "--json"))}
    assert queues["batch"]["paused"] is True and queues["batch"]["tasks"]["queued"] == 1
    assert "batch" in ok(served, "queue", "ls")
    assert "active" in ok(served, "queue", "resume", "batch")
    assert cli(served, "wait", task_id, "--timeout", "10").returncode == 0


def test_queue_ls_fits_80_columns_with_whole_headings(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_name = "nightly-reports-for-every-region-of-the-world"
    ok(home, "submit", "--queue", long_name, "--", "true")
    ok(home, "queue", "set", long_name, "--parallel", "3")
    ok(home, "kill", ok(home, "submit", "--", "true").strip())
    lines = ok(home, "queue", "ls").splitlines()
    assert lines[0].split() == ["QUEUE", "STATE", "LIMIT", "SCHED", "QUEUED", "RUN", "PAUSED",
                                "OK", "FAILED", "STOPPED"]
    assert all(len(line) <= 80 for line in lines)
    row = next(line for line in lines if line.startswith("nightly"))
    assert row.split()[1:] == ["active", "3", "0", "1", "0", "0", "0", "0", "0"]


def test_submit_imports_only_what_it_needs(home: Path) -> None:
    """Every CLI command pays for its imports (the goal for a submit is 80 ms): the
    server's modules (logging, threads, the loop) and the table renderer stay out."""
    import sys

    ok(home, "submit", "--", "true")  # the store exists (creating it reads the migrations)

    probe = ("import runpy, sys\n"
             f"sys.argv = ['taskyard', '--home', {str(home)!r}, 'submit', '--', 'true']\n"
             "try:\n    runpy.run_module('taskyard', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(' '.join(sorted(m for m in sys.modules if m in ("
             "'logging', 'threading', 'rich', 'psycopg', 'shutil', 'taskyard.server.loop'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stdout.split()[1:] == [], done.stdout  # the first word is the task id


@pytest.mark.parametrize("verb", ["ls", "show", "logs"])
def test_read_commands_import_no_table_library_and_no_server(home: Path, verb: str) -> None:
    """``ls``, ``show`` and ``logs`` are read commands (the goal is 100 ms on a store of
    100,000 tasks): tables are printed by cli/grid.py, not rich."""
    import sys

    task_id = ok(home, "submit", "--", "echo", "hi").strip()
    words = {"ls": ["ls", "--limit", "50"], "show": ["show", task_id], "logs": ["logs", task_id]}
    probe = ("import runpy, sys\n"
             f"sys.argv = ['taskyard', '--home', {str(home)!r}, *{words[verb]!r}]\n"
             "try:\n    runpy.run_module('taskyard', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "sys.stderr.write(' '.join(sorted(m for m in sys.modules if m in ("
             "'logging', 'threading', 'rich', 'psycopg', 'taskyard.server.loop'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stderr == b"", done.stderr


def test_help_shows_environment_variables(home: Path) -> None:
    assert "TASKYARD_HOME" in ok(home, "--help")
    text = ok(home, "server", "start", "--help")
    for var in ("TASKYARD_SLOTS", "TASKYARD_KILL_GRACE", "TASKYARD_POLL_INTERVAL"):
        assert var in text


def test_server_status_and_second_start(home: Path) -> None:
    assert cli(home, "server", "status").returncode == 3
    assert "started" in ok(home, "server", "start", "--slots", "1")
    try:
        err = user_error(home, "server", "start", code=2)
        assert "already running" in err
        before = json.loads(ok(home, "server", "status", "--json"))["pid"]
        assert "started" in ok(home, "server", "restart", "--slots", "1")
        after = json.loads(ok(home, "server", "status", "--json"))["pid"]
        assert after != before
    finally:
        assert "stopped" in ok(home, "server", "stop")
    assert cli(home, "server", "status").returncode == 3
    assert "[Service]" in ok(home, "server", "unit")


def test_stray_signals_do_not_kill_the_server(served: Path) -> None:
    import os

    pid = json.loads(ok(served, "server", "status", "--json"))["pid"]
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
        os.kill(pid, sig)
    wait_for(lambda: "SIGALRM: ignored" in (served / "server.log").read_text(),
             message="logged")
    assert json.loads(ok(served, "server", "status", "--json"))["pid"] == pid
    task_id = ok(served, "submit", "--", "true").strip()
    assert cli(served, "wait", task_id, "--timeout", "10").returncode == 0


def test_queue_ls_json_shows_a_queues_status_dir(home: Path, tmp_path: Path) -> None:
    """queue ls --json has every queue setting: --status-dir too (it was left out)."""
    status = tmp_path / "status"
    ok(home, "queue", "set", "billing", "--status-dir", str(status))
    queues = {q["name"]: q for q in json.loads(ok(home, "queue", "ls", "--json"))}
    assert queues["billing"]["status_dir"] == str(status)
    ok(home, "queue", "set", "billing", "--status-dir", "")
    queues = {q["name"]: q for q in json.loads(ok(home, "queue", "ls", "--json"))}
    assert queues["billing"]["status_dir"] is None
