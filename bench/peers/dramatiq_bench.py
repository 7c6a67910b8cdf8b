"""Throughput of dramatiq (Redis broker) running no-op actors.

    .venv/bin/python bench/peers/dramatiq_bench.py [--tasks N] [--processes 2] [--threads 4]

Prints one JSON line (see README.md beside this file). Uses an empty Redis database that it
claims for the run and flushes at the end.
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
    parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")


def bench(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    queue = f"taskyard-bench-{run.run_id}"
    run.setenv("TASKYARD_PEER_DRAMATIQ_BROKER", _common.redis_db(run))
    run.setenv("TASKYARD_PEER_QUEUE", queue)
    from peers import _dramatiq_app

    run.stack.callback(_dramatiq_app.broker.close)
    started = time.perf_counter()
    for _ in range(run.tasks):
        _dramatiq_app.noop.send()
    enqueue_seconds = time.perf_counter() - started
    argv = ["--processes", str(args.processes), "--threads", str(args.threads), "--queues", queue]
    run.launch("worker", [_common.VENV_BIN / "dramatiq", "peers._dramatiq_app", *argv])
    return run.result(
        workers=args.processes,
        config=f"dramatiq --processes {args.processes} --threads {args.threads} "
        "(Redis broker, default middleware, no results backend)",
        versions=[_common.version("dramatiq"), _common.version("redis"), _common.redis_version()],
        note=f"enqueue of {run.tasks} took {enqueue_seconds:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(_common.main("dramatiq", bench, add_arguments))
