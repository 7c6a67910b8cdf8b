"""output: one task writing 256 MiB to stdout (``head -c N /dev/zero``).

taskyard: seconds from just before ``Yard.submit`` to the task's ``finished_at``
(it is ``succeeded`` in the store then), the server's memory (``VmRSS`` when
idle before, ``VmHWM`` right after; the high-water mark also covers start-up,
so ``VmHWM`` before is shown too) and its CPU time. The stored stream must
report the full byte count (``y.logs(id, offset=0, limit=16).total``).

Beside it: a bare ``Popen`` reading the pipe in 1 MiB chunks and discarding
them (with the default 64 KiB pipe, and widened to 1 MiB as taskyard does), and
task-spooler writing the same output to its output file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path

import common
from common import Section, Tsp

MIB = 1024 * 1024
CHUNK = MIB
F_SETPIPE_SZ = 1031
TIMEOUT = 120.0

TASKYARD = "taskyard submit->succeeded"
BARE = "bare Popen pipe reader"
BARE_WIDE = "bare Popen pipe reader, 1 MiB pipe"
TSP = "tsp, output to its file"
RSS_IDLE = "taskyard server VmRSS idle before"
HWM_IDLE = "taskyard server VmHWM idle before"
HWM_AFTER = "taskyard server VmHWM after"
CPU = "taskyard server CPU"


def _argv(size: int) -> list[str]:
    return ["head", "-c", str(size), "/dev/zero"]


def taskyard_run(size: int) -> dict[str, float]:
    with (common.tempdir("output") as home, common.yard(home) as y,
          common.taskyard_server(home, 2) as server):
        time.sleep(0.3)  # idle
        rss, hwm0 = (common.status_kib(server.pid, k) for k in ("VmRSS", "VmHWM"))
        cpu0 = common.cpu_seconds(server.pid)
        t0 = time.time()
        task = y.submit(_argv(size))
        done = common.task_finished(y, task.id, TIMEOUT)
        hwm = common.status_kib(server.pid, "VmHWM")
        cpu = common.cpu_seconds(server.pid) - cpu0
        total = y.logs(task.id, offset=0, limit=16).total
    if done.status != "succeeded" or done.finished_at is None:
        raise RuntimeError(f"task ended {done.status}: {done.error}")
    if total != size:
        raise RuntimeError(f"stored stream reports {total} bytes, not {size}")
    return {TASKYARD: done.finished_at - t0, RSS_IDLE: rss / 1024, HWM_IDLE: hwm0 / 1024,
            HWM_AFTER: hwm / 1024, CPU: cpu}


def bare_run(size: int, widen: bool) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(_argv(size), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    if widen:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, MIB)
    got = 0
    try:
        while data := os.read(fd, CHUNK):
            got += len(data)
        proc.wait(TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if got != size:
        raise RuntimeError(f"read {got} bytes, not {size}")
    return time.perf_counter() - t0


def tsp_run(size: int) -> float:
    with common.tempdir("output-tsp") as folder, Tsp(folder, 2) as q:
        t0 = time.perf_counter()
        job = q.queue(_argv(size))
        waiter = q.waiter(job)
        try:
            waiter.wait(TIMEOUT)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        seconds = time.perf_counter() - t0
        written = Path(q.run("-o", str(job)).strip()).stat().st_size
    if written != size:
        raise RuntimeError(f"tsp output file has {written} bytes, not {size}")
    return seconds


def _collect(size: int, repeat: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        found = taskyard_run(size)
        found[BARE] = bare_run(size, widen=False)
        found[BARE_WIDE] = bare_run(size, widen=True)
        if common.tsp_path():
            found[TSP] = tsp_run(size)
        for name, value in found.items():
            samples.setdefault(name, []).append(value)
    return samples


def _ratios(s: Section, samples: dict[str, list[float]]) -> None:
    pairs = [("taskyard/bare pipe reader (time)", BARE, "<= 1.5"),
             ("taskyard/bare reader, 1 MiB pipe (time)", BARE_WIDE, "")]
    if TSP in samples:
        pairs.append(("taskyard/tsp (time)", TSP, ""))
    for name, den, goal in pairs:
        value, note = common.paired(samples, TASKYARD, den)
        s.ratio(name, value, goal, note)
    growth = [b - a for a, b in zip(samples[RSS_IDLE], samples[HWM_AFTER], strict=True)]
    s.ratio("server VmHWM after - VmRSS idle (MiB)", max(growth), "<= 64", "worst run")


def run(quick: bool, repeat: int) -> Section:
    size = 64 * MIB if quick else 256 * MIB
    samples = _collect(size, repeat)
    s = Section(f"output: one task writing {size // MIB} MiB to stdout (lower is better)")
    for name, values in samples.items():
        unit = "MiB" if name.startswith("taskyard server Vm") else "s"
        s.add(name, common.median(values), unit, common.spread(values))
    s.add("taskyard throughput", size / MIB / s.value(TASKYARD), "MiB/s")
    s.add("bare pipe reader throughput", size / MIB / s.value(BARE), "MiB/s")
    _ratios(s, samples)
    s.notes.append("taskyard keeps the first 1 MiB and the last 32 MiB of a stream (defaults);"
                   " the stored total still counts every byte")
    return s
