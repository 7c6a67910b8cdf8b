"""Throughput of Celery (Redis broker) running no-op tasks with a prefork pool of 2.

    .venv/bin/python bench/peers/celery_bench.py [--tasks N]

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


def bench(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    queue = f"taskyard-bench-{run.run_id}"
    run.setenv("TASKYARD_PEER_CELERY_BROKER", _common.redis_db(run))
    run.setenv("TASKYARD_PEER_QUEUE", queue)
    from peers import _celery_app

    started = time.perf_counter()
    for _ in range(run.tasks):
        _celery_app.noop.delay()
    enqueue_seconds = time.perf_counter() - started
    run.stack.callback(_celery_app.app.close)
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={WORKERS}",
        f"--queues={queue}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=WARNING",
    ]
    run.launch("worker", [_common.VENV_BIN / "celery", "-A", "peers._celery_app", *argv])
    return run.result(
        workers=WORKERS,
        config=f"celery {' '.join(argv[:3])} --without-gossip/mingle/heartbeat (Redis broker, "
        "no result backend, default prefetch multiplier 4, acks on receipt)",
        versions=[
            _common.version("celery"),
            _common.version("kombu"),
            _common.version("redis"),
            _common.redis_version(),
        ],
        note=f"enqueue of {run.tasks} took {enqueue_seconds:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(_common.main("celery", bench))
