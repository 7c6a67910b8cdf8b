"""An experiment, not a benchmark of shipped code: the store's CPU per function task
when one server transaction carries K finishes and K claims, for several K.

A server tick records how attempts ended and claims as many tasks as there are free
slots, in one transaction (``SqlServerStore.apply``). With 2 workers and no-op
tasks a tick carries 1-2 of each; batching more needs tasks handed over ahead
(a worker's inbox). This measures what that would save in the store, the part of
the server's CPU that grows with commits: CPU time of this one process (robust
under load, unlike wall time), per task, over N tasks. ``--drop NAME`` (repeatable)
drops a trigger or an index of the scratch store first, to see what it costs (the
product needs them all); ``--sql FILE`` runs a script on it first (a variant of a
trigger, say). Usage::

    .venv/bin/python bench/experiments/batch_cost.py TASKS K [K ...] [--drop NAME ...] [--sql FILE]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import time

from taskyard import Yard
from taskyard.lifecycle import Status
from taskyard.store.base import Batch, Instance, Outcome
from taskyard.store.sqlite import SQLiteStore


def main() -> None:
    args = sys.argv[1:]
    drops = [args[i + 1] for i, a in enumerate(args) if a == "--drop"]
    script = next((args[i + 1] for i, a in enumerate(args) if a == "--sql"), None)
    flags = ("--drop", "--sql")
    args = [a for i, a in enumerate(args) if a not in flags and (i == 0 or args[i - 1] not in flags)]
    n, sizes = int(args[0]), [int(k) for k in args[1:]] or [1, 2, 4, 8]
    for k in sizes:
        folder = tempfile.mkdtemp(prefix="taskyard-bench-batch-")
        try:
            per_task, commits = run(folder, n, k, drops, script)
            print(f"K={k:3d}: store CPU {per_task * 1e6:6.1f} us a task"
                  f" ({commits} transactions for {n} tasks)")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def run(d: str, n: int, k: int, drops: list[str], script: str | None) -> tuple[float, int]:
    with Yard(d) as y:
        for _ in range(n):
            y.submit_function("noop")
    with sqlite3.connect(os.path.join(d, "taskyard.db")) as db:
        for name in drops:
            kind = db.execute("SELECT type FROM sqlite_master WHERE name=?", (name,)).fetchone()
            if kind is None:
                raise SystemExit(f"no trigger or index named {name}")
            db.execute(f"DROP {kind[0].upper()} {name}")
        if script is not None:
            db.executescript(open(script).read())
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
