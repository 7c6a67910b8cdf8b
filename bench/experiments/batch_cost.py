"""An experiment, not a benchmark of shipped code: the store's CPU per function task
when one server transaction carries K finishes and K claims, for several K.

A server tick records how attempts ended and claims as many tasks as there are free
slots, in one transaction (``SqlServerStore.apply``). With 2 workers and no-op
tasks a tick carries 1-2 of each; batching more needs tasks handed over ahead
(a worker's inbox). This measures what that would save in the store, the part of
the server's CPU that grows with commits: CPU time of this one process (robust
under load, unlike wall time), per task, over N tasks. Usage::

    .venv/bin/python bench/experiments/batch_cost.py TASKS K [K ...]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from taskyard import Yard
from taskyard.lifecycle import Status
from taskyard.store.base import Batch, Instance, Outcome
from taskyard.store.sqlite import SQLiteStore


def main() -> None:
    n, sizes = int(sys.argv[1]), [int(k) for k in sys.argv[2:]] or [1, 2, 4, 8]
    for k in sizes:
        folder = tempfile.mkdtemp(prefix="taskyard-bench-batch-")
        try:
            per_task, commits = run(folder, n, k)
            print(f"K={k:3d}: store CPU {per_task * 1e6:6.1f} us a task"
                  f" ({commits} transactions for {n} tasks)")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def run(d: str, n: int, k: int) -> tuple[float, int]:
    with Yard(d) as y:
        for _ in range(n):
            y.submit_function("noop")
    store = SQLiteStore(os.path.join(d, "taskyard.db"), server=True)
    now = time.time()
    store.register(Instance("srv", "h", "b", os.getpid(), k, now, now, None, None))
    store.claim_bounds = (1 << 20, 32 << 20, 1 << 30)
    previous: list[Outcome] = []
    commits = 0
    began = time.process_time()
    while True:
        claims = store.apply("srv", Batch(outcomes=previous, claim=k)).claims
        commits += 1
        if not claims and not previous:
            break
        previous = [Outcome(c.task_id, c.epoch, Status.SUCCEEDED, result="null")
                    for c in claims]
    used = time.process_time() - began
    store.close()
    with Yard(d) as y:
        done = len(y.list(status="succeeded", limit=n + 1))
    if done != n:
        raise SystemExit(f"{done} of {n} tasks succeeded")
    return used / n, commits


if __name__ == "__main__":
    main()
