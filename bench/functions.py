"""functions: N no-op Python function tasks with 2 workers, in tasks per second.

taskyard's tasks are submitted first (not timed); then a server with 2 slots
(its pool of 2 workers) runs them. The rate is N over the time from the first
task's ``started_at`` to the last one's ``finished_at``, as the store recorded
them: every task has its claim, its attempt row, its events and a fenced finish.
Beside it, the peers of bench/peers (huey, RQ, Celery, dramatiq, procrastinate)
measured in the same run, each with 2 workers and its own normal API
(see bench/peers/README.md for exactly what each measures).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import common
from common import Section
from taskyard import Yard
from taskyard.testing import server_process, stop_server

MODULE = '''
import taskyard

app = taskyard.App()


@app.task(name="noop")
def noop():
    return None
'''


def taskyard_rate(n: int) -> tuple[float, float]:
    """(tasks per second from first start to last finish, server CPU seconds per task)."""
    with common.tempdir("functions") as tmp:
        (tmp / "bench_noop.py").write_text(MODULE)
        home = tmp / "home"
        with Yard(home) as y:
            for _ in range(n):
                y.submit_function("noop")
        env = dict(os.environ, TASKYARD_IMPORTS="bench_noop", TASKYARD_IMPORT_PATH=str(tmp))
        proc = server_process(home, "--slots", "2", env=env)
        try:
            with Yard(home) as y:
                tasks = common.all_finished(y, 30.0 + n / 50)
                cpu = common.cpu_seconds(proc.pid)
        finally:
            stop_server(proc)
        common.check_succeeded(tasks, n)
        first = min(t.started_at or 0 for t in tasks)
        last = max(t.finished_at or 0 for t in tasks)
        return n / (last - first), cpu / n


def run(quick: bool, repeat: int) -> Section:
    n = 1000 if quick else 5000
    section = Section(f"functions: {n:,} no-op function tasks, 2 workers")
    rates, cpus = [], []
    for _ in range(max(1, repeat if not quick else 1)):
        rate, cpu = taskyard_rate(n)
        rates.append(rate)
        cpus.append(cpu)
    ours = common.median(rates)
    section.add("taskyard, pre-submitted", ours, "tasks/s", common.spread(rates))
    section.add("taskyard server CPU per task", common.median(cpus) * 1000, "ms")
    peers = _peers(n)
    fastest = None
    for result in peers:
        name = str(result.get("peer"))
        if "error" in result:
            section.notes.append(f"{name}: not measured: {result['error']}")
            continue
        rate = float(str(result["per_second"]))
        section.add(name, rate, "tasks/s", str(result.get("note", ""))[:60])
        if fastest is None or rate > fastest[1]:
            fastest = (name, rate)
    if fastest is not None:
        section.ratio(f"taskyard / {fastest[0]} (the fastest peer)", ours / fastest[1], ">= 1")
    return section


def _peers(n: int) -> list[dict[str, object]]:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        measure = importlib.import_module("peers.run_all").measure
    except (ImportError, AttributeError) as exc:
        return [{"peer": "peers", "error": f"bench/peers not importable: {exc}"}]
    started = time.monotonic()
    found: list[dict[str, object]] = list(measure(n))
    if time.monotonic() - started > 600:
        found.append({"peer": "note", "error": "peers took over 10 minutes"})
    return found


if __name__ == "__main__":
    print(common.render(run("--quick" in sys.argv, 1)))
