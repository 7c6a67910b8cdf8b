"""Throughput of procrastinate (PostgreSQL) running no-op tasks, one worker of concurrency 2.

    .venv/bin/python bench/peers/procrastinate_bench.py [--tasks N] [--concurrency 2]

Prints one JSON line (see README.md beside this file). Creates a scratch database
``taskyard_bench_peer_<id>`` next to ``test`` on 127.0.0.1:5432 and drops it at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the `peers` package importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from peers import _common
from peers._common import Run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=2, help="worker concurrency (2)")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE of the job table after the enqueue (planner keeps empty-table stats)",
    )


def bench(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    queue = f"taskyard_bench_{run.run_id}"
    run.setenv("TASKYARD_PEER_PG_DSN", _common.pg_database(run))
    run.setenv("TASKYARD_PEER_QUEUE", queue)
    from peers import _procrastinate_app

    app = _procrastinate_app.app
    with app.open():
        app.schema_manager.apply_schema()
        started = time.perf_counter()
        for _ in range(run.tasks):
            _procrastinate_app.noop.defer()
        enqueue_seconds = time.perf_counter() - started
        if not args.no_analyze:  # what autovacuum does within a minute on a live database
            app.connector.get_sync_connector().execute_query("ANALYZE procrastinate_jobs")
    argv = ["worker", f"--concurrency={args.concurrency}", f"--queues={queue}"]
    run.launch(
        "worker",
        [_common.VENV_BIN / "procrastinate", "--app=peers._procrastinate_app.app", *argv],
    )
    return run.result(
        workers=args.concurrency,
        config=f"procrastinate worker --concurrency={args.concurrency} --queues=<run's queue> "
        "(one process; PostgreSQL, LISTEN/NOTIFY on; "
        "sync task run in a thread by procrastinate)",
        versions=[
            _common.version("procrastinate"),
            _common.version("psycopg"),
            _common.pg_version(),
        ],
        note=f"enqueue of {run.tasks} took {enqueue_seconds:.2f} s; "
        + ("no ANALYZE" if args.no_analyze else "ANALYZE procrastinate_jobs after it (not timed)"),
    )


if __name__ == "__main__":
    sys.exit(_common.main("procrastinate", bench, add_arguments))
