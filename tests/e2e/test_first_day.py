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
from typing import Any

import pytest

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
    return [t["id"] for t in json.loads(done.stdout)["items"]]


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


# -- times in show, and every table at 80 columns ----------------------------------------

ZONE = "Asia/Kolkata"  # UTC+05:30 all year: local time differs from UTC by a non-whole hour
TASKS = Path(__file__).parent.parent / "integration" / "tasks_pkg"
LONG = "nightly-reports-for-every-region-of-the-world"
TIME = re.compile(r"\d\d:\d\d:\d\d\.\d{3}")


def _clock(iso: str, zone: str = ZONE) -> str:
    """The time of day of an ISO 8601 time, as show prints it in ``zone``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{when:%H:%M:%S}.{when.microsecond // 1000:03d}"


def _text(home: Path, *args: str) -> str:
    done = cli(home, *args)
    assert done.returncode == 0, (args, done.stderr.decode())
    out = done.stdout.decode()
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert not too_wide, (args, too_wide)
    assert "…" not in "".join(TIME.findall(out))
    return out


def _json(home: Path, *args: str) -> Any:
    done = cli(home, *args, "--json")
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_show_prints_whole_times_in_local_time_or_utc_at_80_columns(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TZ", ZONE)
    with running_server(home, "--slots", "1"):
        task = cli(home, "submit", "--name", LONG, "--queue", LONG, "--retries", "1",
                   "--retry-delay", "0.1", "--", "sh", "-c",
                   "echo a long command line with many words in it; exit 3").stdout.decode()
        assert cli(home, "wait", task.strip(), "--timeout", "20").returncode == 1
    data = _json(home, "show", task.strip())
    assert len(data["attempts"]) == 2 and data["status"] == "failed"
    times = [a[k] for a in data["attempts"] for k in ("started_at", "finished_at")]
    times += [e["at"] for e in data["events"]] + [data["created_at"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t) for t in times)
    local = _text(home, "show", task.strip())
    for flags in (("show", task.strip(), "--utc"), ("--utc", "show", task.strip())):
        in_utc = _text(home, *flags)
        for t in times:
            assert _clock(t) in local and _clock(t, "UTC") in in_utc, t
        assert "T" not in "".join(re.findall(r"\d[\dT:.-]+\d", in_utc + local))
    for word in ("failed (exit 3)", "failed (exit)", "server:", "attempts", "events"):
        assert word in local
    assert data["name"] in local.replace("\n", "")  # the fields above the tables wrap


def _every_table(home: Path) -> None:
    """A long name, queue, tenant, login, schedule, zone and command everywhere; a
    function task with steps; progress; the longest status."""
    def submit(*args: str) -> str:
        done = cli(home, "submit", *args)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode().strip()

    assert cli(home, "tenant", "add", LONG, "--run-as", "a-rather-long-login-name",
               "--parallel", "3").returncode == 0
    assert cli(home, "queue", "set", LONG, "--parallel", "2").returncode == 0
    first = submit("--name", LONG, "--queue", LONG, "--", "sh", "-c",
                   f"{sys.executable} -m taskyard progress 1 3 'a progress message that is"
                   " long enough to be cut'; echo a long command with many words; exit 3")
    submit("--after", first, "--name", LONG, "--", "true")
    submit("--function", "pipeline", "--name", LONG)
    assert cli(home, "cron", "add", LONG, "*/15 9-17 * * MON-FRI", "--tz",
               "America/Argentina/Buenos_Aires", "--tenant", LONG, "--", "sh", "-c",
               "tar czf /backup/everything.tgz /srv /home /etc /var/lib").returncode == 0


def test_every_table_fits_80_columns_without_cutting_times_ids_or_statuses(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TZ", ZONE)
    env = dict(os.environ, TASKYARD_IMPORT_PATH=str(TASKS))
    proc = server_process(home, "--slots", "2", "--import", "ty_tasks", env=env)
    try:
        _every_table(home)
        wait_for(lambda: all(t["status"] in ("succeeded", "failed")
                             for t in _json(home, "ls")["items"]), timeout=30,
                 message="all ended")
        tasks = _json(home, "ls")["items"]
        listed = _text(home, "ls")
        for t in tasks:
            row = next(line for line in listed.splitlines() if line.split()[:1] == [str(t["id"])])
            status = t["status"] + (f" ({t['reason']}" if t["reason"] else "")
            assert status in row, (status, row)
            if t["started_at"]:
                assert _clock(t["started_at"]) in row
        assert "failed (dependency)" in listed and "PROGRESS" in listed
        in_utc = _text(home, "ls", "--utc")
        assert in_utc == _text(home, "--utc", "ls")
        for t in tasks:
            if t["started_at"]:
                assert _clock(t["started_at"], "UTC") in in_utc
        for t in tasks:
            shown = _text(home, "show", str(t["id"]))
            assert "events" in shown
        pipeline = next(t for t in tasks if t["function"] == "pipeline")
        steps = _text(home, "show", str(pipeline["id"]))
        assert "steps" in steps and "STEP" in steps and "level 1 is too low" in steps
        for args in (("queue", "ls"), ("tenant", "ls"), ("cron", "ls"), ("cron", "show", LONG),
                     ("server", "status"), ("--utc", "cron", "ls"), ("server", "status", "--utc")):
            _text(home, *args)
        status = _text(home, "server", "status")
        server = _json(home, "server", "status")
        assert server["instance"] in status
        assert _clock(server["servers"][0]["heartbeat_at"]) not in status  # heard: "0.4s ago"
        cron = _json(home, "cron", "show", LONG)
        assert cron["name"] == LONG
    finally:
        stop_server(proc)
