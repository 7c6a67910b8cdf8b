"""Shared helpers for the benchmarks: results and ratios, temporary homes, a
taskyard server, a task-spooler queue, /proc readings and bounded polling.

Every helper that starts something is a context manager that stops it again,
and every wait is bounded: a benchmark raises :class:`BenchTimeout` rather
than hang.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from taskyard import Yard
from taskyard.model import Task
from taskyard.ops import wait_for
from taskyard.testing import server_process, stop_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TMP_PREFIX = "taskyard-bench-"
UNFINISHED = ["scheduled", "queued", "running", "paused"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchTimeout(RuntimeError):
    pass


# -- results ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    goal: str = ""  #: "" (informational), ">= X" or "<= X"
    note: str = ""

    @property
    def verdict(self) -> str:
        if not self.goal:
            return ""
        op, _, limit = self.goal.partition(" ")
        ok = self.value >= float(limit) if op == ">=" else self.value <= float(limit)
        return "PASS" if ok else "MISS"


@dataclass
class Section:
    """One benchmark's measurements, ratios and remarks."""

    title: str
    rows: list[Row] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, note: str = "") -> None:
        self.rows.append(Row(name, value, unit, note))

    def ratio(self, name: str, value: float, goal: str = "", note: str = "") -> None:
        self.ratios.append(Ratio(name, value, goal, note))

    def value(self, name: str) -> float:
        for row in self.rows:
            if row.name == name:
                return row.value
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(row.name == name for row in self.rows)


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def render(section: Section) -> str:
    lines = [f"== {section.title} ==", f"  {'measurement':<50} {'value':>12}  {'unit':<8} note"]
    for row in section.rows:
        lines.append(f"  {row.name:<50} {fmt(row.value):>12}  {row.unit:<8} {row.note}".rstrip())
    if section.ratios:
        lines.append(f"  {'ratio':<50} {'value':>12}  {'goal':<8} verdict")
        for r in section.ratios:
            lines.append(f"  {r.name:<50} {r.value:>12.2f}  {r.goal:<8} {r.verdict:<7} {r.note}"
                         .rstrip())
    lines.extend(f"  * {note}" for note in section.notes)
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def paired(samples: dict[str, list[float]], num: str, den: str) -> tuple[float, str]:
    """Median over repetitions of ``num/den`` taken within each repetition (robust to
    load that drifts between repetitions), and its spread."""
    ratios = [a / b for a, b in zip(samples[num], samples[den], strict=True)]
    return median(ratios), spread(ratios)


def spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f"median of {len(values)}: {fmt(min(values))}..{fmt(max(values))}"


# -- waiting ------------------------------------------------------------------


def poll(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Sleep-poll ``predicate`` at a fixed interval (cheap for the measured side)."""
    value = wait_for(predicate, timeout, interval=interval, max_interval=interval)
    if not value:
        raise BenchTimeout(f"{what}: not done within {timeout:g}s")
    return value


def all_finished(yard: Yard, timeout: float) -> list[Task]:
    """Wait (20 ms sleep-poll) until no task is unfinished; return all tasks."""
    poll(lambda: not yard.list(status=UNFINISHED, limit=1), timeout, "all tasks finished")
    return yard.list()


def task_finished(yard: Yard, task_id: int, timeout: float, interval: float = 0.02) -> Task:
    def ended() -> Task | None:
        task = yard.get(task_id)
        return task if task.terminal else None

    return poll(ended, timeout, f"task {task_id}", interval)


def check_succeeded(tasks: Sequence[Task], expected: int) -> None:
    good = sum(1 for t in tasks if t.status == "succeeded")
    if good != expected:
        raise RuntimeError(f"{good} of {expected} tasks succeeded")


# -- temporary places and taskyard servers -------------------------------------


@contextlib.contextmanager
def tempdir(label: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{label}-") as name:
        yield Path(name)


@contextlib.contextmanager
def taskyard_server(home: Path, slots: int = 2) -> Iterator[subprocess.Popen[bytes]]:
    """A server on ``home`` (ready when yielded), stopped on exit."""
    proc = server_process(home, "--slots", str(slots))
    try:
        yield proc
    finally:
        stop_server(proc)


@contextlib.contextmanager
def yard(home: Path) -> Iterator[Yard]:
    y = Yard(home)
    try:
        yield y
    finally:
        y.close()


# -- /proc ----------------------------------------------------------------------


def forked_together(count: int, work: Callable[[], object]) -> float:
    """Fork ``count`` processes that each run ``work`` once they are all started; the
    seconds from their start to the last one's exit. A failed one raises."""
    go_r, go_w = os.pipe()
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)  # EOF once the parent closes its end: go
                work()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(go_r)
    t0 = time.perf_counter()
    os.close(go_w)
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    seconds = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"forked processes {failed} failed")
    return seconds


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` field in KiB (VmRSS, VmHWM, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the children ``pid`` has reaped so far."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[13]) + int(fields[14])) / CLK_TCK


def cpu_busy(seconds: float = 1.0) -> float:
    """Share (0..1) of all CPUs busy over ``seconds``, from /proc/stat: other work on
    the machine makes every number here noisier."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def pids_mentioning(text: str) -> list[int]:
    """Live processes (not zombies, not us) whose argv or environment contain ``text``."""
    found = []
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] != "Z" and needle in blob:
            found.append(int(entry.name))
    return found


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- peers (bench/peers) ------------------------------------------------------------


def measure_peers(n: int, names: Sequence[str] | None = None,
                  exclude: Sequence[str] = ()) -> list[dict[str, object]]:
    """``n`` tasks through each peer of bench/peers (all by default), one result dict
    per peer (see ``peers.run_all.measure``). The peers are optional: one that cannot
    be measured, or the whole runner failing, comes back as ``{"peer", "error"}``."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        run_all = importlib.import_module("peers.run_all")
        chosen = [p for p in (names or list(run_all.PEERS)) if p not in exclude]
        started = time.monotonic()
        found: list[dict[str, object]] = list(run_all.measure(n, chosen))
    except Exception as exc:  # say why the peers are missing, keep our own numbers
        return [{"peer": ",".join(names or ["peers"]), "error": f"{type(exc).__name__}: {exc}"}]
    if time.monotonic() - started > 600:
        found.append({"peer": "note", "error": "peers took over 10 minutes"})
    return found


# -- task-spooler -----------------------------------------------------------------


def tsp_path() -> str | None:
    return shutil.which("tsp")


class Tsp:
    """A task-spooler queue of our own: its socket and output files in ``folder``.

    Every tsp process (server, queued clients) inherits ``TS_SOCKET``; on close
    the server is told to quit (``tsp -K``) and anything still carrying our
    socket path is killed by pid.
    """

    def __init__(self, folder: Path, slots: int, max_conn: int = 1000) -> None:
        exe = tsp_path()
        if exe is None:
            raise RuntimeError("tsp (task-spooler) is not installed")
        self.exe = exe
        self.socket = str(folder / "tsp.sock")
        self.env = dict(os.environ, TS_SOCKET=self.socket, TMPDIR=str(folder),
                        TS_MAXCONN=str(max_conn))
        self.env.pop("TS_SLOTS", None)
        self.run("-S", str(slots))

    def run(self, *args: str, timeout: float = 30.0) -> str:
        """``tsp ARGS`` (its exit code is a job's, so it is not checked); its stdout."""
        done = subprocess.run([self.exe, *args], env=self.env, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        return done.stdout.decode()

    def queue(self, argv: Sequence[str]) -> int:
        """Queue a job; its id."""
        out = self.run(*argv).strip()
        if not out.isdigit():
            raise RuntimeError(f"tsp {' '.join(argv)}: no job id in {out!r}")
        return int(out)

    def waiter(self, job: int) -> subprocess.Popen[bytes]:
        """``tsp -w JOB`` started now; it returns once the job finished."""
        return subprocess.Popen([self.exe, "-w", str(job)], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def states(self) -> list[str]:
        lines = self.run("-l").splitlines()[1:]
        return [line.split()[1] for line in lines if line.split()]

    def close(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.run("-K", timeout=10)
        with contextlib.suppress(BenchTimeout):
            poll(lambda: not pids_mentioning("TS_SOCKET=" + self.socket), 3.0, "tsp exit")
        kill_pids(pids_mentioning("TS_SOCKET=" + self.socket))

    def __enter__(self) -> Tsp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[Callable[[], None]]:
    """An exclusive flock on ``path`` (close-on-exec); yields a function releasing it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    state = {"open": True}

    def release() -> None:
        if state["open"]:
            state["open"] = False
            os.close(fd)

    try:
        yield release
    finally:
        release()


def reap_all(procs: dict[int, subprocess.Popen[bytes]]) -> None:
    """Kill and reap what a bare loop left behind after an error."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            proc.kill()
            proc.wait(5)
