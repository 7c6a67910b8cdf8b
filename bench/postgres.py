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
def servers(tmp: Path, dsn: str, count: int) -> Iterator[list[int]]:
    env = dict(os.environ, TASKYARD_STORE=dsn)
    procs = [server_process(tmp / f"s{i}", "--slots", "2", env=env) for i in range(count)]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            stop_server(proc)


def throughput(count: int, n: int) -> tuple[float, float]:
    """Tasks per second from the first start to the last finish, and the servers' CPU
    per task (milliseconds, from their being ready to the last task seen finished)."""
    with common.tempdir("pg") as tmp, scratch() as dsn:
        with Yard(tmp / "client", store=dsn) as y:
            for _ in range(n):
                y.submit(["true"])
            with servers(tmp, dsn, count) as pids:
                cpu = sum(common.cpu_seconds(pid) for pid in pids)
                tasks = common.all_finished(y, 60.0 + n / 20)
                cpu = sum(common.cpu_seconds(pid) for pid in pids) - cpu
        common.check_succeeded(tasks, n)
        first = min(t.started_at or 0 for t in tasks)
        last = max(t.finished_at or 0 for t in tasks)
        return n / (last - first), cpu / n * 1000


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


def procrastinate(n: int) -> tuple[float | None, str]:
    peer = common.measure_peers(n, ["procrastinate"])[0]
    if "error" in peer:
        return None, f"procrastinate: not measured: {peer['error']}"
    return float(str(peer["per_second"])), str(peer.get("note", ""))[:60]


def run(quick: bool, repeat: int) -> Section:
    """Repetitions interleave taskyard with 1 server, with 3, and procrastinate; the
    ratios are the medians of the ratios within each repetition (load that drifts
    between repetitions cancels out)."""
    n = 300 if quick else 1000
    section = Section(f"postgres: {n:,} `true` tasks, 2 slots per server, one PostgreSQL")
    one: list[float] = []
    three: list[float] = []
    cpu: dict[int, list[float]] = {1: [], 3: []}
    peer: list[float] = []
    note = ""
    for _ in range(max(1, repeat)):
        for count, rates in ((1, one), (3, three)):
            rate, ms = throughput(count, n)
            rates.append(rate)
            cpu[count].append(ms)
        rate_or_none, note = procrastinate(n)
        if rate_or_none is not None:
            peer.append(rate_or_none)
    for count, rates in ((1, one), (3, three)):
        section.add(f"taskyard, {count} server(s)", common.median(rates), "tasks/s",
                    common.spread(rates))
        section.add(f"server CPU per task, {count} server(s)", common.median(cpu[count]), "ms",
                    common.spread(cpu[count]))
    if peer:
        section.add("procrastinate, 2 workers (no-op jobs)", common.median(peer), "tasks/s",
                    note)
    else:
        section.notes.append(note)
    lat = {count: latency(count) for count in (1, 3)}
    for count in (1, 3):
        section.add(f"submit->claim p50, {count} server(s)", common.median(lat[count]), "ms")
        section.add(f"submit->claim p95, {count} server(s)", common.quantile(lat[count], 0.95),
                    "ms")
    if peer:
        section.ratio("taskyard 1 server / procrastinate",
                      common.median([a / b for a, b in zip(one, peer, strict=True)]), ">= 2",
                      common.spread([a / b for a, b in zip(one, peer, strict=True)]))
    section.ratio("3 servers / 1 server throughput",
                  common.median([a / b for a, b in zip(three, one, strict=True)]), ">= 2",
                  common.spread([a / b for a, b in zip(three, one, strict=True)]))
    for count in (1, 3):
        section.ratio(f"p50 submit->claim, {count} server(s) (ms)", common.median(lat[count]),
                      "<= 5")
    return section


if __name__ == "__main__":
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    print(common.render(run("--quick" in sys.argv, repeat)))
