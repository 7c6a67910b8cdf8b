"""The ``cwd`` setting: the server changes into it at start; function tasks, and
command tasks whose submit named no directory (Yard, HTTP), run there; the CLI
still passes the caller's directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from taskyard import Status, Yard
from taskyard.testing import cli, make_token, server_process, stop_server, web_process

MODULE = '''\
import os

import taskyard

app = taskyard.App()


@app.task(name="where")
def where() -> str:
    return os.getcwd()


@app.task(name="wander")
def wander() -> None:
    os.chdir("/")
'''


def _output(y: Yard, task_id: int) -> str:
    ended = y.wait(task_id, timeout=30)
    assert ended is not None and ended.status is Status.SUCCEEDED, ended
    return y.logs(task_id).data.decode()


def _http_submit(home: Path, body: dict[str, object]) -> int:
    token = make_token(home, "operator")
    with web_process(home) as base:
        request = urllib.request.Request(
            base + "/api/v1/tasks", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(json.loads(answer.read())["id"])


def test_tasks_naming_no_directory_run_in_the_servers_cwd(home: Path, tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "cwd_tasks.py").write_text(MODULE)  # found there: import_path follows cwd
    proc = server_process(home, "--cwd", str(work), "--import", "cwd_tasks",
                          "--slots", "1")  # one worker: each function runs after the last
    try:
        with Yard(home) as y:
            assert _output(y, y.submit(["pwd"]).id) == f"{work}\n"
            assert _output(y, y.submit(["pwd"], cwd=str(elsewhere)).id) == f"{elsewhere}\n"
            # not where the previous task ran: the server goes back to its own directory
            assert _output(y, y.submit(["pwd"]).id) == f"{work}\n"
            for name in ("where", "wander", "where"):  # a chdir does not outlive its call
                function = y.submit_function(name)
                assert y.wait(function.id, timeout=30) is not None
            assert y.result(function.id) == str(work)
            by_cli = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home),
                                     "submit", "--", "pwd"], cwd=elsewhere,
                                    capture_output=True, check=True, timeout=60)
            assert _output(y, int(by_cli.stdout)) == f"{elsewhere}\n"  # the caller's
            over_http = _http_submit(home, {"argv": ["pwd"]})
            assert _output(y, over_http) == f"{work}\n"
            assert y.get(over_http).cwd is None
    finally:
        stop_server(proc)


def test_a_cwd_that_is_not_a_directory_is_refused(home: Path, tmp_path: Path) -> None:
    done = cli(home, "server", "start", "--cwd", str(tmp_path / "missing"), "--no-web")
    assert done.returncode == 2
    assert done.stderr.decode() == (f"taskyard: error: --cwd: cwd must be an existing"
                                    f" directory, not '{tmp_path / 'missing'}'\n")
    (home / "taskyard.toml").write_text(f'[server]\ncwd = "{os.devnull}"\n')
    assert cli(home, "server", "start", "--no-web").returncode == 2
