"""An experiment, not a benchmark of shipped code: the ceiling of a design where
function workers claim and finish in the store themselves (no server hop).

Each of W forked worker processes loops {record the previous outcome + claim one
task} in one transaction of taskyard's own store code (``SqlServerStore.apply``),
then "runs" a no-op; nothing supervises them, nothing is captured. Usage::

    .venv/bin/python bench/experiments/direct_claims.py TASKS WORKERS
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: common
import common
from taskyard import Yard
from taskyard.lifecycle import Status
from taskyard.store.base import Batch, Instance, Outcome
from taskyard.store.sqlite import SQLiteStore


def main() -> None:
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    folder = tempfile.mkdtemp(prefix="taskyard-bench-direct-")
    try:
        print(f"{workers} worker(s) claiming directly: {run(folder, n, workers):,.0f} tasks/s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(d: str, n: int, workers: int) -> float:
    with Yard(d) as y:
        for _ in range(n):
            y.submit_function("noop")
    path = os.path.join(d, "taskyard.db")
    store = SQLiteStore(path)
    now = time.time()
    store.register(Instance("srv", "h", "b", os.getpid(), workers, now, now, None, None))
    store.close()
    seconds = common.forked_together(workers, lambda: _work(path))
    with Yard(d) as y:
        done = len(y.list(status="succeeded", limit=n + 1))
    if done != n:
        raise SystemExit(f"{done} of {n} tasks succeeded")
    return n / seconds


def _work(path: str) -> None:
    store = SQLiteStore(path)
    previous: list[Outcome] = []
    while True:
        claims = store.apply("srv", Batch(outcomes=previous, claim=1)).claims
        if not claims:
            if not previous:
                return
            previous = []
            continue
        c = claims[0]  # the no-op runs here
        previous = [Outcome(c.task_id, c.epoch, Status.SUCCEEDED, result="null")]


if __name__ == "__main__":
    main()
