"""throughput: N tasks of ``true`` with 2 slots, in tasks per second.

taskyard is measured with its tasks pre-submitted, from the moment the server
reports ready (and, for reference, from the moment it is launched) to the
``finished_at`` of the last task, and also with the tasks submitted through the
Python API while the server runs. Beside it: the bare limits (a Python loop
keeping 2 ``subprocess.Popen(["true"])`` running, and the same with
``os.posix_spawn``), ``seq N | xargs -P2 -n1 true``, and task-spooler.

task-spooler keeps one client process and one connection per queued job and
its server multiplexes them with select(), so it cannot hold 1,000 queued jobs
(it stalls near 1,000 descriptors): its pre-queued run uses at most
``TSP_PREQUEUE_MAX`` jobs behind two gate jobs; its other run queues all N jobs
with one ``tsp true`` each while the queue runs, as a shell loop would.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable

import common
from common import Section, Tsp

SLOTS = 2
TSP_PREQUEUE_MAX = 900
Measures = dict[str, float]

TASKYARD = "taskyard, pre-submitted, from ready"
TASKYARD_LAUNCH = "taskyard, pre-submitted, from launch"
TASKYARD_LIVE = "taskyard, submitted while running"
TASKYARD_CPU = "taskyard server CPU per task"
TASKYARD_TASK_CPU = "taskyard tasks' CPU per task"
TRUE_CPU = "`true` CPU per task (bare posix_spawn loop)"
BARE = "bare Popen loop"
SPAWN = "bare posix_spawn loop"
XARGS = "seq | xargs -P2 -n1 true"
CEILING = "4 posix_spawn loops at once (no slot limit)"
CEILING_LOOPS = 4
TSP_PRE = "tsp, pre-queued"
TSP_LIVE = "tsp, queued while running"


def _timeout(n: int) -> float:
    return 30.0 + n / 20


# -- bare loops ------------------------------------------------------------------


def _loop(n: int, spawn: Callable[[], int], reaped: Callable[[int, int], None]) -> float:
    """Keep SLOTS children running until ``n`` ran; seconds taken."""
    running: set[int] = set()
    started = finished = 0
    t0 = time.perf_counter()
    try:
        while finished < n:
            while len(running) < SLOTS and started < n:
                running.add(spawn())
                started += 1
            pid, status = os.wait()
            running.discard(pid)
            reaped(pid, status)
            finished += 1
        return time.perf_counter() - t0
    finally:
        for pid in running:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                reaped(pid, os.waitpid(pid, 0)[1])


def bare_popen(n: int) -> Measures:
    keep: dict[int, subprocess.Popen[bytes]] = {}  # alive, so subprocess never reaps them

    def spawn() -> int:
        proc = subprocess.Popen(["true"])
        keep[proc.pid] = proc
        return proc.pid

    def reaped(pid: int, status: int) -> None:
        keep.pop(pid).returncode = os.waitstatus_to_exitcode(status)

    return {BARE: n / _loop(n, spawn, reaped)}


def bare_spawn(n: int) -> Measures:
    path = shutil.which("true") or "/bin/true"
    env = dict(os.environ)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = _loop(n, lambda: os.posix_spawn(path, ["true"], env), lambda pid, status: None)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {SPAWN: n / seconds, TRUE_CPU: cpu / n * 1000}


def xargs(n: int) -> Measures:
    return {XARGS: n / _xargs(n, SLOTS)}


def ceiling(n: int) -> Measures:
    """How many `true` processes a second this machine starts and reaps with no slot
    limit (CEILING_LOOPS forked bare posix_spawn loops of 2 each, started together):
    no runner keeping 2 slots busy does better. (``xargs -P8`` is no ceiling: one
    xargs forks serially and was no faster than ``-P2``.)"""
    path = shutil.which("true") or "/bin/true"
    env = dict(os.environ)
    seconds = common.forked_together(CEILING_LOOPS, lambda: _loop(
        n // CEILING_LOOPS, lambda: os.posix_spawn(path, ["true"], env), lambda pid, s: None))
    return {CEILING: (n // CEILING_LOOPS) * CEILING_LOOPS / seconds}


def _xargs(n: int, parallel: int) -> float:
    t0 = time.perf_counter()
    seq = subprocess.Popen(["seq", str(n)], stdout=subprocess.PIPE)
    assert seq.stdout is not None
    run = subprocess.Popen(["xargs", f"-P{parallel}", "-n1", "true"], stdin=seq.stdout)
    seq.stdout.close()
    try:
        run.wait(_timeout(n))
        seq.wait(5)
    finally:
        for proc in (seq, run):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return time.perf_counter() - t0


# -- taskyard ----------------------------------------------------------------------------


def taskyard_presubmitted(n: int) -> Measures:
    with common.tempdir("tput") as home, common.yard(home) as y:
        for _ in range(n):
            y.submit(["true"])
        launch = time.time()
        with common.taskyard_server(home, SLOTS) as proc:
            ready = time.time()
            cpu0 = common.cpu_seconds(proc.pid)
            tasks = common.all_finished(y, _timeout(n))
            cpu = common.cpu_seconds(proc.pid) - cpu0
            children = common.children_cpu_seconds(proc.pid)
        common.check_succeeded(tasks, n)
        end = max(t.finished_at or 0.0 for t in tasks)
    return {TASKYARD: n / (end - ready), TASKYARD_LAUNCH: n / (end - launch),
            TASKYARD_CPU: cpu / n * 1000, TASKYARD_TASK_CPU: children / n * 1000}


def taskyard_live(n: int) -> Measures:
    with (common.tempdir("tput-live") as home, common.yard(home) as y,
          common.taskyard_server(home, SLOTS)):
        t0 = time.time()
        for _ in range(n):
            y.submit(["true"])
        tasks = common.all_finished(y, _timeout(n))
        common.check_succeeded(tasks, n)
        end = max(t.finished_at or 0.0 for t in tasks)
    return {TASKYARD_LIVE: n / (end - t0)}


# -- task-spooler ----------------------------------------------------------------------


def _tsp_wait(q: Tsp, jobs: list[int], timeout: float) -> float:
    """Wait for the last SLOTS jobs (waiters already started), then for every job to be
    finished; the time they were."""
    waiters = [q.waiter(job) for job in jobs[-SLOTS:]]
    try:
        for w in waiters:
            w.wait(timeout)
    finally:
        for w in waiters:
            if w.poll() is None:
                w.kill()
                w.wait()
    end = time.time()
    if any(state != "finished" for state in q.states()):
        common.poll(lambda: all(s == "finished" for s in q.states()), timeout, "tsp jobs")
        end = time.time()
    return end


def tsp_prequeued(n: int) -> Measures:
    n = min(n, TSP_PREQUEUE_MAX)
    with common.tempdir("tsp") as folder, Tsp(folder, SLOTS, max_conn=n + 50) as q:
        gate = folder / "gate"
        with common.held_lock(gate) as release:
            for _ in range(SLOTS):  # occupy every slot until released
                q.queue(["flock", str(gate), "true"])
            jobs = [q.queue(["true"]) for _ in range(n)]
            time.sleep(0.2)
            t0 = time.time()
            release()
            end = _tsp_wait(q, jobs, _timeout(n))
    return {TSP_PRE: n / (end - t0)}


def tsp_live(n: int) -> Measures:
    with common.tempdir("tsp-live") as folder, Tsp(folder, SLOTS, max_conn=n + 50) as q:
        t0 = time.time()
        jobs = [q.queue(["true"]) for _ in range(n)]
        end = _tsp_wait(q, jobs, _timeout(n))
    return {TSP_LIVE: n / (end - t0)}


# -- the section -----------------------------------------------------------------------


def _collect(n: int, repeat: int) -> dict[str, list[float]]:
    variants = [bare_popen, bare_spawn, xargs, ceiling, taskyard_presubmitted, taskyard_live]
    if common.tsp_path():
        variants += [tsp_prequeued, tsp_live]
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):  # interleaved, so drift hits every variant alike
        for variant in variants:
            for name, value in variant(n).items():
                samples.setdefault(name, []).append(value)
    return samples


RATIOS = [  # (name, numerator, denominator, goal)
    ("taskyard/tsp (both pre-queued)", TASKYARD, TSP_PRE, ">= 2"),
    ("taskyard/tsp (both queued while running)", TASKYARD_LIVE, TSP_LIVE, ">= 2"),
    ("taskyard/bare Popen loop", TASKYARD, BARE, ">= 0.7"),
    ("taskyard/bare posix_spawn loop", TASKYARD, SPAWN, ""),
    ("taskyard/xargs", TASKYARD, XARGS, ""),
    ("taskyard/machine ceiling", TASKYARD, CEILING, ""),
    ("taskyard from launch/bare Popen loop", TASKYARD_LAUNCH, BARE, ""),
    ("taskyard while running/bare Popen loop", TASKYARD_LIVE, BARE, ""),
]


def _ratios(s: Section, samples: dict[str, list[float]]) -> None:
    for name, num, den, goal in RATIOS:
        if num in samples and den in samples:
            value, note = common.paired(samples, num, den)
            s.ratio(name, value, goal, note)


CPU_BOUND = "CPU bound: cpus / (server + task CPU per task)"


def _cpu_budget(s: Section, samples: dict[str, list[float]]) -> None:
    """How fast taskyard could go if every CPU were busy all the time with its server
    and its tasks (CPU per task measured in the same repetition), and how much of that
    it gets and 2 x tsp would need."""
    cpus = os.cpu_count() or 1
    bound = [cpus * 1000 / (server + task) for server, task
             in zip(samples[TASKYARD_CPU], samples[TASKYARD_TASK_CPU], strict=True)]
    s.add(CPU_BOUND, common.median(bound), "tasks/s", common.spread(bound))
    with_bound = dict(samples, **{CPU_BOUND: bound})
    value, note = common.paired(with_bound, TASKYARD, CPU_BOUND)
    s.ratio("taskyard/CPU bound (how busy it keeps the CPUs)", value, "", note)
    if TSP_PRE in samples:
        with_bound["2x"] = [2 * v for v in samples[TSP_PRE]]
        value, note = common.paired(with_bound, "2x", CPU_BOUND)
        s.ratio("2 x tsp pre-queued / CPU bound", value, "", note)


def _against_bare(s: Section, samples: dict[str, list[float]]) -> None:
    """Where 2 x tsp sits against the bare loop. The issue's numbers put task-spooler
    at 0.22 x the bare loop, so the must (2 x tsp, 0.43 x bare) lies well below the
    goal (0.7 x bare); task-spooler's pre-queued jobs are waiting client processes
    that each fork their own job, so here it can sit far higher."""
    for tsp, label in ((TSP_PRE, "pre-queued"), (TSP_LIVE, "queued while running")):
        if tsp not in samples:
            continue
        value, note = common.paired({"2x": [2 * v for v in samples[tsp]], BARE: samples[BARE]},
                                    "2x", BARE)
        s.ratio(f"2 x tsp {label} / bare Popen loop", value, "", note)
        if value > 1:
            s.notes.append(f"2 x tsp {label} is faster than a bare Python loop that does"
                           " nothing but keep 2 `true` running: no runner starting its"
                           " tasks from one Python process meets it on this machine now")
        elif value > 0.7:
            s.notes.append(f"2 x tsp {label} lies above the issue's goal for taskyard"
                           " (0.7 x the bare loop); in the issue's own numbers it lies"
                           " well below it (0.43 x)")


def run(quick: bool, repeat: int) -> Section:
    n = 200 if quick else 1000
    samples = _collect(n, repeat)
    s = Section(f"throughput: {n} x `true`, {SLOTS} slots (higher is better)")
    for name, values in samples.items():
        unit = "ms" if name in (TASKYARD_CPU, TASKYARD_TASK_CPU, TRUE_CPU) else "tasks/s"
        note = f"{min(n, TSP_PREQUEUE_MAX)} jobs; " if name == TSP_PRE else ""
        s.add(name, common.median(values), unit, note + common.spread(values))
    _ratios(s, samples)
    if TSP_PRE in samples:
        value, note = common.paired({"2x": [2 * v for v in samples[TSP_PRE]],
                                     CEILING: samples[CEILING]}, "2x", CEILING)
        s.ratio("2 x tsp pre-queued / machine ceiling", value, "", note)
        if value > 1:
            s.notes.append("2 x tsp pre-queued is more `true` processes a second than this"
                           " machine starts with no slot limit at all: that goal"
                           " cannot be met here by any runner")
    _against_bare(s, samples)
    _cpu_budget(s, samples)
    if not common.tsp_path():
        s.notes.append("tsp not installed: apt-get install -y task-spooler")
    return s
