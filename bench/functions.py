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

import os
import sys

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


def taskyard_rate(n: int, synchronous: str = "normal") -> tuple[float, float]:
    """(tasks per second from first start to last finish, server CPU seconds per task)."""
    with common.tempdir("functions") as tmp:
        (tmp / "bench_noop.py").write_text(MODULE)
        home = tmp / "home"
        with Yard(home) as y:
            for _ in range(n):
                y.submit_function("noop")
        env = dict(os.environ, TASKYARD_IMPORTS="bench_noop", TASKYARD_IMPORT_PATH=str(tmp),
                   TASKYARD_SYNCHRONOUS=synchronous)
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


#: The peers that were ever close to taskyard here: measured in every repetition,
#: interleaved with taskyard, so each ratio is taken within one repetition (load
#: that drifts between repetitions cancels out). The others are measured once.
#: huey is measured twice: as it comes (an fsync per commit) and without the
#: fsync, which is the durability of taskyard's default (``synchronous=normal``: a
#: commit survives a crash of any process, not a power loss).
FRONT = ("huey", "huey-nofsync", "dramatiq")
OURS = "taskyard, pre-submitted"
OURS_FULL = "taskyard, synchronous=full"


def run(quick: bool, repeat: int) -> Section:
    n = 1000 if quick else 5000
    section = Section(f"functions: {n:,} no-op function tasks, 2 workers")
    samples: dict[str, list[float]] = {}
    cpus: list[float] = []
    notes: dict[str, str] = {}
    for _ in range(max(1, repeat if not quick else 1)):
        rate, cpu = taskyard_rate(n)
        samples.setdefault(OURS, []).append(rate)
        cpus.append(cpu)
        samples.setdefault(OURS_FULL, []).append(taskyard_rate(n, "full")[0])
        for result in common.measure_peers(n, FRONT):
            name = str(result.get("peer"))
            if "error" in result:
                notes[name] = f"{name}: not measured: {result['error']}"
                continue
            samples.setdefault(name, []).append(float(str(result["per_second"])))
            notes.setdefault(name, str(result.get("note", "")))
    for name, values in samples.items():
        section.add(name, common.median(values), "tasks/s",
                    "; ".join(x for x in (common.spread(values), notes.get(name, "")[:40]) if x))
    section.add("taskyard server CPU per task", common.median(cpus) * 1000, "ms")
    ours = common.median(samples[OURS])
    for result in common.measure_peers(n, None, exclude=FRONT):
        name = str(result.get("peer"))
        if "error" in result:
            section.notes.append(f"{name}: not measured: {result['error']}")
            continue
        rate = float(str(result["per_second"]))
        section.add(name, rate, "tasks/s", str(result.get("note", ""))[:60])
        if rate > max((common.median(v) for k, v in samples.items() if k in FRONT), default=0):
            section.ratio(f"taskyard / {name} (measured once)", ours / rate, ">= 1")
    section.notes += [note for name, note in notes.items() if name not in samples]
    front = [name for name in FRONT if name in samples]
    if front:
        per_rep = [a / max(samples[name][i] for name in front)
                   for i, a in enumerate(samples[OURS])]
        section.ratio("taskyard / the fastest peer (same repetition)", common.median(per_rep),
                      ">= 1", common.spread(per_rep))
    for name, num, den in (("taskyard / huey, neither fsyncs each commit", OURS, "huey-nofsync"),
                           ("taskyard full / huey, both fsync each commit", OURS_FULL, "huey")):
        if num in samples and den in samples:
            value, note = common.paired(samples, num, den)
            section.ratio(name, value, "", note)
    return section


if __name__ == "__main__":
    print(common.render(run("--quick" in sys.argv, 1)))
