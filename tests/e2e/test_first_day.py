"""What a new user meets on the first day: a PostgreSQL store without its driver, the
note about running tasks on a shared store, and times in tables that fit 80 columns."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from taskyard.testing import (
    cli,
    instance_id,
    postgres_schema,
    running_server,
    server_process,
    stop_server,
    wait_for,
)

PG_URL = "postgresql://nobody@127.0.0.1:5432/nowhere"
INSTALL = "pip install 'taskyard[postgres]'"

#: Put first on a subprocess's path: importing psycopg fails there, as in an install
#: without the postgres extra.
NO_PSYCOPG = """\
import sys

class _NoPsycopg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoPsycopg())
"""


def _without_psycopg(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_PSYCOPG)
    env = dict(os.environ, PYTHONPATH=str(site))
    probe = subprocess.run([sys.executable, "-c", "import psycopg"], env=env,
                           capture_output=True)
    assert probe.returncode == 1 and b"No module named 'psycopg'" in probe.stderr
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taskyard", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_postgresql_store_without_its_driver_says_what_to_install(
        tmp_path: Path, home: Path) -> None:
    env = _without_psycopg(tmp_path)
    for command in (["ls"], ["submit", "--", "true"], ["show", "1"], ["queue", "ls"],
                    ["db", "status"], ["server", "start"], ["server", "start", "--foreground"]):
        done = _run(env, "--home", str(home), "--store", PG_URL, *command)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("taskyard: error: "), done.stderr
        assert "PostgreSQL" in lines[0] and INSTALL in lines[0], lines[0]
        assert "internal error" not in lines[0]
    # server start said it before it daemonized: no server, no pidfile, no log
    assert list(home.iterdir()) == []
    # the same from the environment
    done = _run(dict(env, TASKYARD_STORE=PG_URL), "--home", str(home), "ls")
    assert done.returncode == 2 and INSTALL in done.stderr


def test_the_api_raises_a_user_error_with_the_same_words(tmp_path: Path, home: Path) -> None:
    env = _without_psycopg(tmp_path)
    probe = ("import taskyard\n"
             "from taskyard.errors import UserError\n"
             "try:\n"
             f"    taskyard.Yard(home={str(home)!r}, store={PG_URL!r})\n"
             "except UserError as exc:\n"
             "    print(type(exc).__name__, exc.field, exc, sep='|')\n")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    kind, field, message = done.stdout.strip().split("|")
    assert kind == "ConfigError" and field == "store"
    assert INSTALL in message and "PostgreSQL" in message


def test_a_sqlite_store_needs_no_driver(tmp_path: Path, home: Path) -> None:
    env = _without_psycopg(tmp_path)
    done = _run(env, "--home", str(home), "submit", "--", "true")
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
    assert cli(home, "ls").returncode == 0


# -- the note about running tasks whose server is gone ---------------------------------

NOTE = re.compile(r"^taskyard: note: server (\w+) on host (\S+) last heard (\d+) s ago: its (\d+)"
                  r" running task\(s\) will be recorded as crashed")


def _notes(home: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), *args, "ls"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def _running(home: Path, *args: str, env: dict[str, str] | None = None) -> list[int]:
    done = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), *args, "ls",
                           "--json", "--status", "running"], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return [t["id"] for t in json.loads(done.stdout)]


def test_a_client_home_on_a_shared_store_judges_by_the_store(tmp_path: Path) -> None:
    """A server on one home runs the tasks; a client home sees no note while it
    heartbeats, and a note naming it (id, host, seconds) once it is frozen past the
    lease."""
    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    env = dict(os.environ, TASKYARD_LEASE="2", TASKYARD_HEARTBEAT_INTERVAL="0.2")
    with postgres_schema(PG_DSN, "e2e") as url:
        server_home, client_home = tmp_path / "server", tmp_path / "client"
        client_home.mkdir()
        store = ("--store", url)
        proc = server_process(server_home, "--slots", "2", env=dict(env, TASKYARD_STORE=url))
        try:
            for _ in range(2):
                assert cli(client_home, *store, "submit", "--", "sleep", "60").returncode == 0
            wait_for(lambda: len(_running(client_home, *store, env=env)) == 2,
                     message="both tasks running")
            assert _notes(client_home, *store, env=env) == []
            os.kill(proc.pid, signal.SIGSTOP)  # frozen: silent past its lease
            try:
                notes = wait_for(lambda: _notes(client_home, *store, env=env),
                                 message="a note about the silent server")
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert len(notes) == 1, notes
            found = NOTE.match(notes[0])
            assert found, notes[0]
            assert found.group(1) == instance_id(server_home)
            assert found.group(2) == socket.gethostname()
            assert int(found.group(3)) >= 2 and found.group(4) == "2"
            assert notes[0].endswith("when a server starts")  # no other server is alive
            # awake again, it heartbeats: nothing to say
            wait_for(lambda: _notes(client_home, *store, env=env) == [], message="no note")
        finally:
            subprocess.run([sys.executable, "-m", "taskyard", "--home", str(server_home),
                            "--store", url, "server", "stop", "--now"], env=env,
                           capture_output=True, timeout=60)
            stop_server(proc)


def test_a_home_whose_server_died_says_which_and_that_it_is_gone(home: Path) -> None:
    proc = server_process(home, "--slots", "1")
    try:
        task = cli(home, "submit", "--", "sleep", "60").stdout.decode().strip()
        wait_for(lambda: _running(home) == [int(task)], message="the task running")
        assert _notes(home) == []
        server = instance_id(home)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        notes = _notes(home)  # at once: its process is gone from this host
        assert len(notes) == 1, notes
        found = NOTE.match(notes[0])
        assert found and found.group(1) == server and found.group(4) == "1", notes[0]
        assert notes[0].endswith(f"when a server starts (its process {proc.pid} is gone)")
    finally:
        stop_server(proc)
    with running_server(home):  # records it crashed (and kills the leftover sleep)
        wait_for(lambda: not _running(home), message="the task recorded crashed")
    assert json.loads(cli(home, "show", task, "--json").stdout)["reason"] == "crashed"
    assert _notes(home) == []
