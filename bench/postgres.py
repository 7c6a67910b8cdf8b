"""postgres: taskyard on one PostgreSQL store with 1 and with 3 servers (2 slots
each): throughput of N ``true`` tasks (pre-submitted; from the first start to the
last finish, as the store recorded them) and submit->claim latency of single
tasks (p50/p95; the servers idle, woken by NOTIFY). Beside it: procrastinate on
the same PostgreSQL, N no-op jobs with 2 workers (bench/peers).

Needs a PostgreSQL at TASKYARD_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432/test); every run uses a scratch schema.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import common
from common import Section
from taskyard import Yard
from taskyard.testing import postgres_schema, server_process, stop_server

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
LATENCY_SAMPLES = 60


def scratch() -> contextlib.AbstractContextManager[str]:
    return postgres_schema(DSN, "bench")


@contextlib.contextmanager
def servers(tmp: Path, dsn: str, count: int) -> Iterator[None]:
    env = dict(os.environ, TASKYARD_STORE=dsn)
    procs = [server_process(tmp / f"s{i}", "--slots", "2", env=env) for i in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            stop_server(proc)


def throughput(count: int, n: int) -> float:
    with common.tempdir("pg") as tmp, scratch() as dsn:
        with Yard(tmp / "client", store=dsn) as y:
            for _ in range(n):
                y.submit(["true"])
            with servers(tmp, dsn, count):
                tasks = common.all_finished(y, 60.0 + n / 20)
        common.check_succeeded(tasks, n)
        first = min(t.started_at or 0 for t in tasks)
        last = max(t.finished_at or 0 for t in tasks)
        return n / (last - first)


def latency(count: int) -> list[float]:
    samples = []
    with common.tempdir("pg") as tmp, scratch() as dsn, servers(tmp, dsn, count):
        with Yard(tmp / "client", store=dsn) as y:
            for i in range(LATENCY_SAMPLES + 5):
                t0 = time.time()
                task = y.submit(["true"])
                done = common.task_finished(y, task.id, 10.0, interval=0.002)
                if i >= 5 and done.started_at is not None:  # the first ones warm up
                    samples.append((done.started_at - t0) * 1000)
    return samples


def run(quick: bool, repeat: int) -> Section:
    n = 300 if quick else 1000
    section = Section(f"postgres: {n:,} `true` tasks, 2 slots per server, one PostgreSQL")
    rates: dict[int, float] = {}
    for count in (1, 3):
        rates[count] = common.median([throughput(count, n) for _ in range(max(1, repeat))])
        section.add(f"taskyard, {count} server(s)", rates[count], "tasks/s")
        lat = latency(count)
        section.add(f"submit->claim p50, {count} server(s)", common.median(lat), "ms")
        section.add(f"submit->claim p95, {count} server(s)", common.quantile(lat, 0.95), "ms")
        section.ratio(f"p50 latency, {count} server(s) (ms)", common.median(lat), "<= 10")
    section.ratio("3 servers / 1 server throughput", rates[3] / rates[1], ">= 1")
    peer = common.measure_peers(n, ["procrastinate"])[0]
    if "error" in peer:
        section.notes.append(f"procrastinate: not measured: {peer['error']}")
    else:
        rate = float(str(peer["per_second"]))
        section.add("procrastinate, 2 workers (no-op jobs)", rate, "tasks/s",
                    str(peer.get("note", ""))[:60])
        section.ratio("taskyard 1 server / procrastinate", rates[1] / rate)
    return section


if __name__ == "__main__":
    print(common.render(run("--quick" in sys.argv, 1)))
