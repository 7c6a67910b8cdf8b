"""Bulk submit: tasks/s through ``Yard.submit_many`` (the goal: 20,000/s on SQLite,
10,000/s on PostgreSQL, on the 2-core machine) and through ``taskyard submit
--from-file`` (the whole command: reading, checking and writing the file's lines).

Each run submits N tasks (``echo N``, a name and a little metadata, as a batch job
would) into an empty store, in chunks of the default size, and prints tasks/s and
PASS/MISS against the goal.

    .venv/bin/python bench/bulk_submit.py [N]        # default 100,000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from taskyard import Yard
from taskyard.model import TaskSpec

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
GOALS = {"sqlite": 20_000.0, "postgres": 10_000.0}
VENV_BIN = Path(sys.executable).parent


def _specs(n: int) -> list[TaskSpec]:
    return [TaskSpec(argv=("echo", str(i)), name=f"job-{i}", cwd="/tmp",
                     meta={"batch": "bench", "i": i}) for i in range(n)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _verdict(label: str, n: int, seconds: float, goal: float | None) -> None:
    rate = _rate(n, seconds)
    mark = "" if goal is None else ("  PASS" if rate >= goal else "  MISS")
    target = "" if goal is None else f" (goal {goal:,.0f}/s)"
    print(f"{label:<42} {n:>8,} tasks in {seconds:6.2f} s: {rate:>9,.0f} tasks/s{target}{mark}")


def _api(label: str, home: Path, store: str | None, n: int, goal: float) -> None:
    specs = _specs(n)
    with Yard(home, store=store) as y:
        y.submit_many(specs[:100])  # the connection and the schema, untimed
        started, cpu = time.perf_counter(), time.process_time()
        tasks = y.submit_many(specs[100:])
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert len(tasks) == n - 100
    _verdict(label, n - 100, took, goal)
    print(f"{'':<42} (this process's CPU: {cpu:.2f} s, {_rate(n - 100, cpu):,.0f} tasks per CPU"
          f" second; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def _cli(label: str, home: Path, store: str | None, n: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "tasks.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"argv": ["echo", str(i)], "name": f"job-{i}",
                                "meta": {"batch": "bench", "i": i}}) + "\n")
    argv = [str(VENV_BIN / "taskyard"), "--home", str(home)]
    if store:
        argv += ["--store", store]
    started = time.perf_counter()
    subprocess.run([*argv, "submit", "--from-file", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    _verdict(label, n, time.perf_counter() - started, None)


def _pg_schema() -> tuple[str, str] | None:
    try:
        import psycopg
    except ImportError:
        return None
    schema = f"bench_bulk_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL at {DSN}: skipped ({exc})")
        return None
    return schema, f"{DSN}?options=-c%20search_path%3D{schema}"


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory(prefix="taskyard-bench-") as tmp:
        _api("SQLite, Yard.submit_many", Path(tmp) / "a", None, n, GOALS["sqlite"])
        _cli("SQLite, taskyard submit --from-file", Path(tmp) / "b", None, n)
        found = _pg_schema()
        if found is None:
            return
        schema, dsn = found
        try:
            _api("PostgreSQL, Yard.submit_many", Path(tmp) / "c", dsn, n, GOALS["postgres"])
        finally:
            _drop(schema)
        schema, dsn = _pg_schema() or ("", "")
        try:
            _cli("PostgreSQL, taskyard submit --from-file", Path(tmp) / "d", dsn, n)
        finally:
            _drop(schema)


if __name__ == "__main__":
    main()
