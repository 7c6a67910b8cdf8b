"""Throughput of RQ (Redis) running no-op jobs with 2 `rq worker --burst` processes.

    .venv/bin/python bench/peers/rq_bench.py [--tasks N] [--worker-class rq.Worker|rq.SimpleWorker]

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

WORKERS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--worker-class",
        default="rq.Worker",
        help="rq.Worker (default: forks a work horse per job) or rq.SimpleWorker (no fork)",
    )


def bench(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    import redis  # type: ignore[import-not-found, unused-ignore]
    import rq  # type: ignore[import-not-found, unused-ignore]

    from peers import _rq_tasks

    url = _common.redis_db(run)
    queue_name = f"taskyard-bench-{run.run_id}"
    connection = redis.Redis.from_url(url)
    run.stack.callback(connection.close)
    queue = rq.Queue(queue_name, connection=connection)
    started = time.perf_counter()
    for _ in range(run.tasks):
        queue.enqueue(_rq_tasks.noop)
    enqueue_seconds = time.perf_counter() - started
    if queue.count != run.tasks:
        raise _common.PeerError(f"{queue.count} jobs queued after enqueueing {run.tasks}")
    argv = ["--burst", "-q", "-w", args.worker_class, "-u", url, queue_name]
    for i in range(WORKERS):
        run.launch(
            f"worker{i}", [_common.VENV_BIN / "rq", "worker", "-n", f"{queue_name}-{i}", *argv]
        )
    return run.result(
        workers=WORKERS,
        config=f"{WORKERS} x `rq worker --burst -q -w {args.worker_class}` (Redis)",
        versions=[_common.version("rq"), _common.version("redis"), _common.redis_version()],
        note=f"enqueue of {run.tasks} took {enqueue_seconds:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(_common.main("rq", bench, add_arguments))
