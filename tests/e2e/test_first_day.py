"""What a new user meets on the first day: a PostgreSQL store without its driver, the
note about running tasks on a shared store, and times in tables that fit 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from taskyard.testing import cli

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
