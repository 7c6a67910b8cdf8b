"""Finish hooks with real servers: the hook's environment and stdin, hooks as tasks of
their own, timeouts and failures that never touch the task's outcome, delivery after a
server died, and signed webhooks retried after a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from taskyard import Yard
from taskyard.lifecycle import Reason, Status
from taskyard.testing import cli, server_process, stop_server, wait_for

RECORD = """
import json, os, sys
out = sys.argv[1]
data = {k: v for k, v in os.environ.items() if k.startswith("TASKYARD_")}
data["stdin"] = sys.stdin.buffer.read().decode("latin-1")
path = os.path.join(out, data["TASKYARD_TASK_ID"] + "-" + str(os.getpid()))
with open(path + ".tmp", "w") as f:
    json.dump(data, f)
os.rename(path + ".tmp", path + ".json")
"""


def _recorder(tmp_path: Path) -> tuple[list[str], Path]:
    script, out = tmp_path / "record.py", tmp_path / "hooks"
    script.write_text(RECORD)
    out.mkdir()
    return [sys.executable, str(script), str(out)], out


def _records(out: Path, task_id: int) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{task_id}-*.json"))]


def _env(**settings: Any) -> dict[str, str]:
    env = dict(os.environ, TASKYARD_HEARTBEAT_INTERVAL="0.2", TASKYARD_LEASE="2")
    env.update({f"TASKYARD_{k.upper()}": v for k, v in settings.items()})
    return env


def test_a_hook_reports_the_end_in_its_env_and_the_stdout_tail_on_stdin(
        home: Path, tmp_path: Path) -> None:
    hook, out = _recorder(tmp_path)
    chatty = "import sys; sys.stdout.write('x' * 100000 + 'THE END'); sys.stdout.flush()"
    with Yard(home) as y:
        proc = server_process(home, "--slots", "2", env=_env(on_finish=json.dumps(hook)))
        try:
            ok = y.submit([sys.executable, "-c", chatty], name="chatty")
            reported = y.submit(["sh", "-c", f"{sys.executable} -m taskyard report error"
                                 " 'disk full'; exit 0"], name="reports")
            exits = y.submit(["sh", "-c", "exit 3"])
            for task in (ok, reported, exits):
                wait_for(lambda t=task.id: _records(out, t), timeout=30, message="hook ran")
            (seen,) = _records(out, ok.id)
            assert seen["TASKYARD_STATUS"] == "succeeded" and seen["TASKYARD_ATTEMPT"] == "1"
            assert seen["TASKYARD_NAME"] == "chatty" and seen["TASKYARD_EXIT_CODE"] == "0"
            assert seen["TASKYARD_ERROR"] == "" and seen["TASKYARD_REASON"] == ""
            assert len(seen["stdin"]) == 64 * 1024 and seen["stdin"].endswith("xTHE END")
            (seen,) = _records(out, reported.id)
            assert y.get(reported.id).status is Status.FAILED
            assert (seen["TASKYARD_STATUS"], seen["TASKYARD_REASON"], seen["TASKYARD_ERROR"]) == (
                "failed", "reported", "disk full")
            (seen,) = _records(out, exits.id)
            assert (seen["TASKYARD_REASON"], seen["TASKYARD_EXIT_CODE"],
                    seen["TASKYARD_ERROR"], seen["TASKYARD_SIGNAL"]) == ("exit", "3", "exit 3", "")
            shown = json.loads(cli(home, "show", str(ok.id), "--json", check=True).stdout)
            (run,) = shown["hooks"]
            assert run["attempt"] == 1
            wait_for(lambda: y.get(run["id"]).terminal, timeout=30, message="the hook ended")
            hook_task = y.get(run["id"])
            assert hook_task.queue == "_hooks" and hook_task.hook_for == (ok.id, 1)
            assert hook_task.status is Status.SUCCEEDED
            text = cli(home, "show", str(ok.id), check=True).stdout.decode()
            assert f"task {run['id']} (attempt 1): succeeded" in text
        finally:
            stop_server(proc)


def test_queue_and_task_hooks_timeouts_and_failures_leave_the_outcome_alone(
        home: Path, tmp_path: Path) -> None:
    hook, out = _recorder(tmp_path)
    with Yard(home) as y:
        cli(home, "queue", "set", "slow", "--on-finish-json", json.dumps(["sleep", "30"]),
            check=True)
        cli(home, "queue", "set", "quiet", "--on-finish-json", "[]", check=True)
        proc = server_process(home, "--slots", "3",
                              env=_env(on_finish=json.dumps(hook), on_finish_timeout="0.5"))
        try:
            timed = y.submit(["true"], queue="slow")
            failing = y.submit(["true"], on_finish=["sh", "-c", "exit 7"])
            quiet = y.submit(["true"], queue="quiet")
            own = json.loads(cli(home, "submit", "--json", "--queue", "quiet",
                                 "--on-finish-json", json.dumps(hook), "--", "true",
                                 check=True).stdout)
            wait_for(lambda: _records(out, own["id"]), timeout=30, message="its own hook")
            for task, reason in ((timed, Reason.TIMEOUT), (failing, Reason.EXIT)):
                wait_for(lambda t=task.id: [h for h in json.loads(cli(
                    home, "show", str(t), "--json", check=True).stdout)["hooks"]
                    if h["status"] == "failed"], timeout=30, message="the hook failed")
                (run,) = json.loads(cli(home, "show", str(task.id), "--json").stdout)["hooks"]
                assert run["reason"] == reason
                assert y.get(task.id).status is Status.SUCCEEDED, "the task's outcome stays"
            assert _records(out, quiet.id) == [] and cli(
                home, "show", str(quiet.id), "--json").stdout.count(b'"hooks": []') == 1
        finally:
            stop_server(proc)


def test_bad_hooks_are_refused_with_one_line(home: Path) -> None:
    for args in (("submit", "--on-finish-json", "{}", "--", "true"),
                 ("submit", "--on-finish-json", "[1]", "--", "true"),
                 ("submit", "--on-finish-json", "nope", "--", "true"),
                 ("submit", "--queue", "_hooks", "--", "true"),
                 ("queue", "set", "q", "--on-finish-url", "ftp://x"),
                 ("queue", "set", "q", "--on-finish-json", '[""]'),
                 ("queue", "set", "_hooks", "--on-finish-json", '["true"]'),
                 ("submit", "--fd", "3=@/dev/zero", "--", "true"),  # read bounded, not whole
                 ("submit", "--stdin-file", "/dev/zero", "--", "true")):
        done = cli(home, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr


def test_webhook_urls_that_could_never_be_delivered_are_refused(home: Path) -> None:
    """A URL with a user and password (user:pw@host) or a port out of range was taken,
    then every try failed (the user:pw@host was looked up as a host name) for a day,
    with the password in the task's events and the log. Now exit 2 naming the URL."""
    for url in ("http://user:pw-x7q@127.0.0.1:8080/hook", "https://token@example.com/",
                "http://127.0.0.1:99999/hook", "http://127.0.0.1:port/hook"):
        done = cli(home, "queue", "set", "q", "--on-finish-url", url)
        assert done.returncode == 2, (url, done.stderr)
        assert done.stderr.count(b"\n") == 1 and b"on_finish_url" in done.stderr, done.stderr
        assert b"pw-x7q" not in done.stderr
    (home / "taskyard.toml").write_text('[server]\non_finish_url = "http://u:p@localhost/"\n')
    start = cli(home, "server", "start", "--no-web")
    assert start.returncode == 2 and b"on_finish_url" in start.stderr, start.stderr
    (home / "taskyard.toml").unlink()
    queues = json.loads(cli(home, "queue", "ls", "--json").stdout)
    assert [q for q in queues if q["name"] == "q"] == []


def test_a_hook_whose_server_died_runs_once_afterwards(home: Path, tmp_path: Path) -> None:
    hook, out = _recorder(tmp_path)
    env = _env(on_finish=json.dumps(hook))
    with Yard(home) as y:
        waiting = y.submit(["true"], delay=3600)
        cli(home, "queue", "pause", "_hooks", check=True)
        proc = server_process(home, env=env)
        try:
            ran = y.submit(["sh", "-c", "echo before; exit 0"])
            wait_for(lambda: len(y.list(queue="_hooks")) == 1, timeout=30,
                     message="its hook task made, held in the paused queue")
        finally:
            proc.send_signal(signal.SIGKILL)  # before the hook ran
            proc.wait()
        y.kill(waiting.id)  # ended by a client while no server runs
        cli(home, "queue", "resume", "_hooks", check=True)
        proc = server_process(home, env=env)
        try:
            for task in (waiting, ran):
                wait_for(lambda t=task.id: _records(out, t), timeout=30, message="it ran")
            wait_for(lambda: all(t.terminal for t in y.list(queue="_hooks")), timeout=30,
                     message="hooks done")
            assert len(_records(out, waiting.id)) == 1 and len(_records(out, ran.id)) == 1
            assert _records(out, waiting.id)[0]["TASKYARD_ATTEMPT"] == "0"
            assert _records(out, ran.id)[0]["stdin"] == "before\n"
        finally:
            stop_server(proc)


def test_a_crashed_task_gets_its_hook_from_the_server_that_records_the_crash(
        home: Path, tmp_path: Path) -> None:
    hook, out = _recorder(tmp_path)
    env = _env(on_finish=json.dumps(hook))
    with Yard(home) as y:
        proc = server_process(home, env=env)
        try:
            task = y.submit(["sleep", "300"])
            wait_for(lambda: y.get(task.id).status is Status.RUNNING, message="running")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc = server_process(home, env=env)
        try:
            wait_for(lambda: _records(out, task.id), timeout=30, message="the crash's hook")
            (seen,) = _records(out, task.id)
            assert (seen["TASKYARD_STATUS"], seen["TASKYARD_REASON"],
                    seen["TASKYARD_ERROR"]) == ("failed", "crashed", "crashed")
        finally:
            stop_server(proc)


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers.items()), body))
        code = 500 if len(type(self).got) <= type(self).fail_first else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_signed_webhook_is_retried_after_a_500(home: Path) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.got = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_port}/done"
    env = _env(on_finish_url=url, on_finish_secret="s3cret")
    try:
        with Yard(home) as y:
            proc = server_process(home, env=env)
            try:
                task = y.submit(["sh", "-c", "exit 4"], name="hooked")
                wait_for(lambda: len(_Receiver.got) >= 2, timeout=30, message="a retry")
                wait_for(lambda: any("delivered" in (e.detail or "")
                                     for e in y.events(task.id)), message="recorded")
            finally:
                stop_server(proc)
            for headers, body in _Receiver.got:
                want = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
                assert headers["Taskyard-Signature"] == want
                sent = json.loads(body)
                assert (sent["id"], sent["status"], sent["exit_code"]) == (task.id, "failed", 4)
                assert sent["delivery"]["attempt"] == 1
            assert [json.loads(b)["delivery"]["try"] for _, b in _Receiver.got] == [1, 2]
            notes = [e.detail or "" for e in y.events(task.id) if e.from_status == e.to_status]
            assert "HTTP 500" in notes[0] and "delivered" in notes[-1]
    finally:
        receiver.shutdown()
        receiver.server_close()
