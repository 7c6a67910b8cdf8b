"""An experiment: what the store's tick costs on PostgreSQL, without processes.

A loop does what a server with 2 slots does for ``true`` tasks, minus the spawn:
each tick records the outcome of the attempt claimed in the tick before and claims
one more (``apply(Batch(outcomes=..., claim=1))``), two such loops interleaved so
that every tick carries one end and one claim. It prints ticks per second and the
CPU per tick of this process and of its PostgreSQL backend (read from ``/proc``:
PostgreSQL on this machine). Compare designs by the CPU, which moves less with the
machine's load than the rate::

    .venv/bin/python bench/experiments/pg_tick_cost.py [TASKS]
    PYTHONPATH=/elsewhere/src .venv/bin/python bench/experiments/pg_tick_cost.py   # another tree
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: common
import common
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store.base import Batch, Claim, Instance, Outcome
from taskyard.store.postgres import PostgresStore
from taskyard.testing import postgres_schema

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with postgres_schema(DSN, "bench") as dsn:
        store = PostgresStore(dsn, max_size=1)
        try:
            for _ in range(n):
                store.submit(TaskSpec(argv=("true",)), by="bench")
            now = time.time()
            store.register(Instance("srv", "h", "b", os.getpid(), 2, now, now, None, None))
            running = store.apply("srv", Batch(claim=2)).claims
            backend = tick_backend(store)
            ticks, seconds, mine, theirs = loop(store, running, backend)
        finally:
            store.close()
    print(f"{ticks} ticks of one end + one claim; load {os.getloadavg()[0]:.1f}")
    print(f"  ticks/s                        {ticks / seconds:8.0f}")
    print(f"  client CPU per tick            {mine / ticks * 1000:8.3f} ms")
    print(f"  PostgreSQL backend CPU a tick  {theirs / ticks * 1000:8.3f} ms")


def tick_backend(store: PostgresStore) -> int:
    """The backend pid of the connection the ticks ran on: their own where they have
    one (``pgconn.TickSession``), else the pool's (an older tree, given by PYTHONPATH)."""
    ticks: Any = getattr(store, "_ticks", None)
    if ticks is not None:
        return int(ticks._conn.info.backend_pid)
    pool: Any = store._pool
    with pool.connection() as conn:
        return int(conn.info.backend_pid)


def loop(store: PostgresStore, running: list[Claim],
         backend: int) -> tuple[int, float, float, float]:
    ticks = 0
    cpu0, be0, t0 = time.process_time(), common.cpu_seconds(backend), time.perf_counter()
    while running:
        c = running.pop(0)
        done = Outcome(c.task_id, c.epoch, Status.SUCCEEDED, exit_code=0)
        running += store.apply("srv", Batch(outcomes=[done], claim=1)).claims
        ticks += 1
    return (ticks, time.perf_counter() - t0, time.process_time() - cpu0,
            common.cpu_seconds(backend) - be0)


if __name__ == "__main__":
    main()
