"""Throughput of huey (SqliteHuey) running no-op tasks with 2 workers.

    .venv/bin/python bench/peers/huey_bench.py [--tasks N] [--worker-type process|thread]

Prints one JSON line (see README.md beside this file).
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
    parser.add_argument("--worker-type", choices=["process", "thread"], default="process")
    parser.add_argument(
        "--fsync",
        choices=["default", "on", "off"],
        default="default",
        help="SqliteHuey(fsync=...): default leaves SQLite's synchronous (FULL here)",
    )


def bench(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    run.setenv("TASKYARD_PEER_HUEY_DB", str(run.tmp / "huey.db"))
    run.setenv("TASKYARD_PEER_HUEY_FSYNC", args.fsync)
    from peers import _huey_app

    started = time.perf_counter()
    for _ in range(run.tasks):
        _huey_app.noop()
    enqueue_seconds = time.perf_counter() - started
    pending = _huey_app.huey.pending_count()
    if pending != run.tasks:
        raise _common.PeerError(f"{pending} tasks pending after enqueueing {run.tasks}")
    argv = ["-w", str(WORKERS), "-k", args.worker_type]
    sync = {
        "default": "fsync=None: SQLite's synchronous=FULL, an fsync per commit",
        "on": "fsync=True: synchronous=FULL",
        "off": "fsync=False: synchronous=OFF, no fsync",
    }[args.fsync]
    run.launch("consumer", [_common.VENV_BIN / "huey_consumer", "peers._huey_app.huey", *argv])
    return run.result(
        workers=WORKERS,
        config=f"huey_consumer {' '.join(argv)} (SqliteHuey, WAL, {sync}, file in a temp dir)",
        versions=[_common.version("huey"), f"SQLite {__import__('sqlite3').sqlite_version}"],
        note=f"enqueue of {run.tasks} took {enqueue_seconds:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(_common.main("huey", bench, add_arguments))
