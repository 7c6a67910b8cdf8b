"""Search and listing on a store of a million tasks (issue 16's goals): a first page of
50 with any one filter through the API (``Yard.list``) under 20 ms, the CLI's whole run
(``taskyard ls --limit 50 FILTER``, a fresh process) under 150 ms, counts per status
(``Yard.counts``, ``ls --counts``) under 100 ms. SQLite, then PostgreSQL.

The store is ``web_fill``'s (bulk SQL through the store's triggers, untimed; SQLite
cached in ``bench/.cache``), and then, untimed too, every 20th task made a function
task, so that ``--kind`` has both kinds to find.

    .venv/bin/python bench/search.py [--quick] [--no-pg] [--pg-size N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import web_fill
from common import Section
from taskyard import Yard

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PAGE_MS, CLI_MS, COUNTS_MS = 20.0, 150.0, 100.0
FUNCTIONS = "UPDATE tasks SET function = 'jobs.resize', kwargs = '{}' WHERE id % 20 = 0"
#: one filter each (label, Yard.list keywords, ls flags)
FILTERS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("none", {}, []),
    ("--status failed", {"status": "failed"}, ["--status", "failed"]),
    ("--status running --status paused", {"status": ["running", "paused"]},
     ["--status", "running", "--status", "paused"]),
    ("--queue rare", {"queue": "rare"}, ["--queue", "rare"]),
    ("--tenant initech", {"tenant": "initech"}, ["--tenant", "initech"]),
    ("--name report-job", {"name": "report-job"}, ["--name", "report-job"]),
    ("--name 'report*'", {"name": "report*"}, ["--name", "report*"]),
    ("--name 'rare*'", {"name": "rare*"}, ["--name", "rare*"]),
    ("--kind function", {"kind": "function"}, ["--kind", "function"]),
    ("--kind command", {"kind": "command"}, ["--kind", "command"]),
    ("--since 1h", {"since": "1h"}, ["--since", "1h"]),
    ("--until 3d", {"until": "3d"}, ["--until", "3d"]),
    ("--meta region=eu-west", {"meta": {"region": "eu-west"}}, ["--meta", "region=eu-west"]),
    ("--meta customer=c42", {"meta": {"customer": "c42"}}, ["--meta", "customer=c42"]),
    ("--text jobs.run", {"text": "jobs.run"}, ["--text", "jobs.run"]),
    ("--text no-such-word", {"text": "no-such-word"}, ["--text", "no-such-word"]),
]


def _ms(call: Any, samples: int) -> float:
    for _ in range(2):
        call()
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return common.median(took)


def _env(home: Path) -> dict[str, str]:
    """Bytecode cached in a private folder, as an installed package has it (this sandbox
    sets PYTHONDONTWRITEBYTECODE: every module compiled on every run), see submit_time."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(home.parent / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _cli_ms(home: Path, location: str, flags: list[str], samples: int) -> float:
    argv = [sys.executable, "-m", "taskyard", "--home", str(home), "--store", location,
            "ls", "--limit", "50", *flags]
    env = _env(home)
    subprocess.run(argv, check=True, capture_output=True, env=env)  # bytecode cached
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        took.append((time.perf_counter() - started) * 1000)
    return common.median(took)


def _measure(s: Section, label: str, home: Path, location: str, samples: int,
             cli: bool) -> None:
    with Yard(home, store=location) as y:
        for name, kw, flags in FILTERS:
            page = _ms(lambda kw=kw: y.list(limit=50, **kw), samples)
            counts = _ms(lambda kw=kw: y.counts(**kw), max(3, samples // 3))
            shown = len(y.list(limit=50, **kw))
            s.add(f"{label}: list {name}", page, "ms", f"{shown} shown")
            s.ratio(f"{label}: first page of 50, {name} / {PAGE_MS:.0f} ms", page / PAGE_MS,
                    "<= 1")
            s.add(f"{label}: counts {name}", counts, "ms")
            s.ratio(f"{label}: counts, {name} / {COUNTS_MS:.0f} ms", counts / COUNTS_MS, "<= 1")
            if cli:
                whole = _cli_ms(home, location, flags, max(3, samples // 4))
                s.add(f"{label}: taskyard ls {name} (whole run)", whole, "ms")
                s.ratio(f"{label}: ls whole run, {name} / {CLI_MS:.0f} ms", whole / CLI_MS,
                        "<= 1")


def _python_floor(samples: int) -> float:
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        took.append((time.perf_counter() - started) * 1000)
    return common.median(took)


def run(quick: bool, repeat: int, pg: bool = True, pg_size: int | None = None) -> Section:
    n = 100_000 if quick else 1_000_000
    samples = 10 if quick else 10 * max(2, repeat)
    s = Section(f"search: ls / Yard.list on a {n:,}-task store (lower is better)")
    s.add("python -c pass (the floor of any CLI run)", _python_floor(5), "ms")
    with common.tempdir("search") as tmp:
        filled = web_fill.sqlite_store(n, tmp / "taskyard.db")
        import sqlite3

        db = sqlite3.connect(filled.location)
        with db:
            db.execute(FUNCTIONS)
        db.close()
        s.notes.append(f"SQLite store filled in {filled.seconds:.0f} s (0: cached),"
                       f" copied in {filled.copy_seconds:.1f} s; untimed")
        _measure(s, "sqlite", tmp / "home", filled.location, samples, cli=True)
        if pg:
            _postgres(s, tmp / "pghome", pg_size or n, samples)
    return s


def _postgres(s: Section, home: Path, n: int, samples: int) -> None:
    try:
        with web_fill.postgres_store(DSN, n) as filled:
            import psycopg

            with psycopg.connect(filled.location, autocommit=True) as conn:
                conn.execute(FUNCTIONS)
                conn.execute("VACUUM ANALYZE tasks")
            s.notes.append(f"PostgreSQL: {n:,} tasks filled in {filled.seconds:.0f} s; untimed")
            _measure(s, f"postgres {n // 1000}k", home, filled.location, samples, cli=True)
    except Exception as exc:  # no PostgreSQL here: the SQLite goals stand alone
        s.notes.append(f"PostgreSQL left out: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    size = None
    if "--pg-size" in sys.argv:
        size = int(sys.argv[sys.argv.index("--pg-size") + 1])
    print(common.render(run("--quick" in sys.argv, 1, "--no-pg" not in sys.argv, size)))
