"""latency: how soon an idle server (2 slots) starts a task submitted through the
Python API, in milliseconds; one task at a time, each waited for before the next.

* submit->claim: ``Task.started_at`` (set by the server in the claiming
  transaction, just before the spawn) minus ``time.time()`` taken right before
  ``Yard.submit``. Beside it: one bare ``subprocess.Popen(["true"])`` call.
* submit->exec (stricter, same clock for both): the task is ``tee FIFO``; the
  benchmark holds the FIFO's read end and notes (``perf_counter``) when tee has
  opened and closed it (POLLHUP). That includes tee's own start-up (dynamic
  loading, about a millisecond), so the same is measured for a bare Popen and a
  bare ``os.posix_spawn`` of ``tee FIFO``; the difference is taskyard's own cost.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import common
from common import Section
from taskyard import Yard

SLOTS = 2
WARMUP = 10
HUP_TIMEOUT_MS = 10_000

CLAIM = "taskyard submit->claim"
SUBMIT_CALL = "taskyard Yard.submit() call"
FINISHED = "taskyard submit->finished (true)"
POPEN_CALL = "bare Popen(['true']) call"
EXEC = "taskyard submit->exec (tee FIFO)"
POPEN_EXEC = "bare Popen->exec (tee FIFO)"
SPAWN_EXEC = "bare posix_spawn->exec (tee FIFO)"


class Fifo:
    """A FIFO whose read end is reopened before each sample; :meth:`hup` waits until a
    writer opened and closed it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.fd = -1

    def arm(self) -> None:
        self.close()
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    def hup(self) -> float:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP)
        if not poller.poll(HUP_TIMEOUT_MS):
            raise common.BenchTimeout("nobody opened the FIFO")
        return time.perf_counter()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _taskyard_claim(y: Yard, samples: dict[str, list[float]]) -> None:
    t0 = time.time()
    task = y.submit(["true"])
    returned = time.time()
    done = common.task_finished(y, task.id, 10.0, interval=0.002)
    assert done.started_at is not None and done.finished_at is not None
    samples.setdefault(CLAIM, []).append((done.started_at - t0) * 1000)
    samples.setdefault(SUBMIT_CALL, []).append((returned - t0) * 1000)
    samples.setdefault(FINISHED, []).append((done.finished_at - t0) * 1000)


def _taskyard_exec(y: Yard, fifo: Fifo, samples: dict[str, list[float]]) -> None:
    fifo.arm()
    t0 = time.perf_counter()
    task = y.submit(["tee", str(fifo.path)])
    samples.setdefault(EXEC, []).append((fifo.hup() - t0) * 1000)
    common.task_finished(y, task.id, 10.0, interval=0.002)


def _popen_call(samples: dict[str, list[float]]) -> None:
    t0 = time.perf_counter()
    proc = subprocess.Popen(["true"])
    samples.setdefault(POPEN_CALL, []).append((time.perf_counter() - t0) * 1000)
    proc.wait(10)


def _bare_exec(fifo: Fifo, name: str, start: Callable[[list[str]], int],
               samples: dict[str, list[float]]) -> None:
    fifo.arm()
    t0 = time.perf_counter()
    pid = start(["tee", str(fifo.path)])
    samples.setdefault(name, []).append((fifo.hup() - t0) * 1000)
    os.waitpid(pid, 0)


def _popen_start(argv: list[str]) -> int:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    proc.returncode = 0  # reaped by the caller with waitpid
    return proc.pid


def _spawn_start(argv: list[str]) -> int:
    path = shutil.which(argv[0]) or argv[0]
    return os.posix_spawn(path, argv, os.environ,
                          file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])


def _measure(home: Path, n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    fifo = Fifo(home.parent / "fifo")
    try:
        with common.yard(home) as y, common.taskyard_server(home, SLOTS):
            for i in range(WARMUP + n):
                target = samples if i >= WARMUP else {}
                _taskyard_claim(y, target)
                _taskyard_exec(y, fifo, target)
                _popen_call(target)
                _bare_exec(fifo, POPEN_EXEC, _popen_start, target)
                _bare_exec(fifo, SPAWN_EXEC, _spawn_start, target)
                time.sleep(0.005)  # let the server go idle again
    finally:
        fifo.close()
    return samples


def run(quick: bool, repeat: int) -> Section:
    n = 50 if quick else 200
    with common.tempdir("latency") as folder:
        samples = _measure(folder / "home", n)
    s = Section(f"latency: {n} samples each, idle server, {SLOTS} slots (ms, lower is better)")
    for name, values in samples.items():
        s.add(f"{name} p50", common.median(values), "ms")
        s.add(f"{name} p95", common.quantile(values, 0.95), "ms",
              f"max {common.fmt(max(values))}")
    s.ratio("submit->claim p50 (ms)", s.value(f"{CLAIM} p50"), "<= 2")
    s.ratio("submit->claim p95 (ms)", s.value(f"{CLAIM} p95"), "<= 3")
    s.ratio("submit->claim p50 / bare Popen call p50",
            s.value(f"{CLAIM} p50") / s.value(f"{POPEN_CALL} p50"))
    s.ratio("submit->exec p50 / bare Popen->exec p50",
            s.value(f"{EXEC} p50") / s.value(f"{POPEN_EXEC} p50"))
    s.ratio("submit->exec p50 - bare posix_spawn->exec p50 (ms)",
            s.value(f"{EXEC} p50") - s.value(f"{SPAWN_EXEC} p50"))
    s.notes.append("submit->claim includes the submit transaction, the wake datagram and"
                   " the server's claim transaction; the spawn follows it")
    return s
