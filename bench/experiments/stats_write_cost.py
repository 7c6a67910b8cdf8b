"""What schema 16's index for ``taskyard stats`` costs the write path: the CPU of a
task's three store transactions (submit; claim; finish), SQLite, with the partial
``events_stats`` index and without it (dropped from a fresh store), interleaved; and,
with ``tasks_created``, an index on ``tasks.created_at`` as it was first built
(``stats`` finds submitted tasks by id instead).

    .venv/bin/python bench/experiments/stats_write_cost.py [TASKS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store.base import Outcome
from taskyard.store.sqlite import SQLiteStore


def per_task_us(tasks: int, drop: tuple[str, ...], add: tuple[str, ...]) -> float:
    with tempfile.TemporaryDirectory(prefix="taskyard-bench-writecost-") as tmp:
        store = SQLiteStore(os.path.join(tmp, "t.db"))
        with store._tx() as cur:
            for name in drop:
                cur.execute(f"DROP INDEX {name}")
            for sql in add:
                cur.execute(sql)
        spec = TaskSpec(argv=("true",))
        started = time.process_time()
        for _ in range(tasks):
            store.submit(spec, by="bench")
            (claim,) = store.claim("bench", 1)
            store.finish("bench", [Outcome(claim.task_id, claim.epoch, Status.SUCCEEDED,
                                           exit_code=0)])
        took = time.process_time() - started
        store.close()
    return took / tasks * 1e6


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    created = "CREATE INDEX tasks_created ON tasks (created_at)"
    variants = {"without events_stats": (("events_stats",), ()),
                "schema 16 (events_stats)": ((), ()),
                "schema 16 + tasks_created": ((), (created,))}
    found: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(4):
        for name, (drop, add) in variants.items():
            found[name].append(per_task_us(tasks, drop, add))
    for name, values in found.items():
        print(f"{name:<28} {statistics.median(values):6.0f} µs CPU a task"
              f"  ({', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
