"""An experiment, not a benchmark of shipped code: the ceiling of a server that hands
each function worker up to D tasks at a time (a per-worker inbox), with taskyard's
own transaction (``SqlServerStore.apply``: the outcomes reported since the last
tick + a claim of as many tasks as there are free inbox places, in one commit).

D = 1 is today's shape (a task is handed over only to an idle worker). W forked
workers read ``task epoch`` lines and report ``task epoch`` when the no-op ran;
nothing is supervised or captured, nothing is journaled, so this is an upper
bound for the design described in ARCHITECTURE.md ("Function throughput"), and
the server CPU per task it prints is the part that batching changes. Usage::

    .venv/bin/python bench/experiments/inbox_ceiling.py TASKS WORKERS D [D ...] [--huey]

``--huey`` measures huey without an fsync per commit (bench/peers) after each D,
for the ratio within the same minute.
"""

from __future__ import annotations

import os
import select
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: common
import common
from taskyard import Yard
from taskyard.lifecycle import Status
from taskyard.store.base import Batch, Claim, Instance, Outcome
from taskyard.store.sqlite import SQLiteStore


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--huey"]
    n, workers = int(args[0]), int(args[1])
    for depth in [int(d) for d in args[2:]] or [1, 2, 4]:
        folder = tempfile.mkdtemp(prefix="taskyard-bench-inbox-")
        try:
            rate, cpu, commits = run(folder, n, workers, depth)
            line = (f"D={depth}: {rate:8,.0f} tasks/s, server CPU {cpu * 1e6:5.0f} us a task,"
                    f" {n / commits:4.1f} tasks a commit")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if "--huey" in sys.argv:
            (peer,) = common.measure_peers(n, ("huey-nofsync",))
            huey = float(str(peer.get("per_second", "nan")))
            line += f"; huey without fsync {huey:,.0f} tasks/s: ratio {rate / huey:.2f}"
        print(line, flush=True)


def _worker(control: int, report: int) -> None:
    pending = b""
    while True:
        data = os.read(control, 65536)
        if not data:
            os._exit(0)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:  # the no-op runs here, one task after the other
            os.write(report, line + b"\n")


def run(d: str, n: int, workers: int, depth: int) -> tuple[float, float, int]:
    with Yard(d) as y:
        for _ in range(n):
            y.submit_function("noop")
    store = SQLiteStore(os.path.join(d, "taskyard.db"), server=True)
    now = time.time()
    store.register(Instance("srv", "h", "b", os.getpid(), workers, now, now, None, None))
    store.claim_bounds = (1 << 20, 32 << 20, 1 << 30)
    controls, reports, inboxes = [], [], []
    for _ in range(workers):
        control_r, control_w = os.pipe()
        report_r, report_w = os.pipe()
        if os.fork() == 0:
            os.close(control_w)
            os.close(report_r)
            _worker(control_r, report_w)
        os.close(control_r)
        os.close(report_w)
        controls.append(control_w)
        reports.append(report_r)
        inboxes.append(0)
    began, cpu0 = time.perf_counter(), time.process_time()
    done, commits, claims = 0, 0, True
    ended: list[Outcome] = []
    epoch: dict[int, int] = {}
    while done < n:
        if ended or (claims and sum(inboxes) < workers * depth):
            claims_got = _tick(store, ended, workers * depth - sum(inboxes))
            commits += 1
            done += len(ended)
            ended = []
            claims = bool(claims_got)
            _hand_over(claims_got, controls, inboxes, depth, epoch)
        ready, _, _ = select.select(reports, [], [], 1.0)
        for fd in ready:
            for line in os.read(fd, 65536).split(b"\n")[:-1]:
                task_id = int(line.split()[0])
                ended.append(Outcome(task_id, epoch.pop(task_id), Status.SUCCEEDED,
                                     result="null"))
                inboxes[reports.index(fd)] -= 1
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu0
    for fd in controls:
        os.close(fd)
    for _ in range(workers):
        os.wait()
    store.close()
    return n / seconds, cpu / n, commits


def _tick(store: SQLiteStore, ended: list[Outcome], free: int) -> list[Claim]:
    return store.apply("srv", Batch(outcomes=ended, claim=free)).claims


def _hand_over(claims: list[Claim], controls: list[int], inboxes: list[int], depth: int,
               epoch: dict[int, int]) -> None:
    """Fill the emptiest inboxes first; one write per worker."""
    lines: dict[int, bytes] = {}
    for claim in claims:
        w = min(range(len(inboxes)), key=lambda i: inboxes[i])
        assert inboxes[w] < depth
        inboxes[w] += 1
        epoch[claim.task_id] = claim.epoch
        lines[w] = lines.get(w, b"") + f"{claim.task_id} {claim.epoch}\n".encode()
    for w, data in lines.items():
        os.write(controls[w], data)


if __name__ == "__main__":
    main()
