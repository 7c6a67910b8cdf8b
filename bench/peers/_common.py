"""Plumbing shared by the peer benchmark drivers: worker processes in their own process
groups, bounded waits, Redis and PostgreSQL scratch space, and the one JSON line each
benchmark prints. (The probe the tasks call lives in ``_probe.py``, to keep workers light.)

How a run measures (the same for every peer):

1. All tasks are enqueued with the peer's normal API before any worker runs (not timed).
2. After one second of sampling how busy the CPUs are (``cpu_busy_before``), the workers
   are launched (``launched_at`` = ``time.time()`` just before the first launch).
3. Every task calls :func:`probe`, which appends ``time.time()`` as one fixed-width 18-byte
   line to a probe file with a single ``O_APPEND`` ``write``; the driver polls the file's size
   every 10 ms until it holds one line per task, or fails at the deadline.
4. ``seconds`` is the last probe minus the first one: first task start to last task finish.
   ``seconds_from_launch`` is the last probe minus ``launched_at`` (worker start-up included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from peers._probe import LINE, PROBE_ENV

PEERS_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
#: Every process a peer run starts carries this variable (value: the run id), so that
#: run_all can find and kill leftovers of a driver that was itself killed.
RUN_ENV = "TASKYARD_PEER_RUN"
REDIS_URL = os.environ.get("TASKYARD_PEER_REDIS", "redis://127.0.0.1:6379")
PG_DSN = os.environ.get("TASKYARD_PEER_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_CLAIM_KEY = "taskyard-peer-bench:claim"
POLL = 0.01
DEFAULT_TASKS = 5000
DEFAULT_TIMEOUT = 150.0


class PeerError(RuntimeError):
    """The peer could not be measured; the message becomes the JSON ``error``."""


class Interrupted(BaseException):
    pass


def version(dist: str) -> str:
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist} (not installed)"


@dataclass
class Worker:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 600) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return text[-chars:].strip()


@dataclass
class Run:
    """One measurement: scratch directory, worker environment, cleanups, and the result."""

    peer: str
    tasks: int
    timeout: float
    stack: contextlib.ExitStack
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tmp: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    workers: list[Worker] = field(default_factory=list)
    launched_at: float = 0.0
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu_busy_before: float = 0.0

    def __post_init__(self) -> None:
        self.tmp = Path(
            self.stack.enter_context(tempfile.TemporaryDirectory(prefix="taskyard-peers-"))
        )
        # Workers import the task modules as `peers.<module>`: put a directory holding only a
        # `peers` symlink on their path, so that bench/*.py cannot shadow other modules.
        pypath = self.tmp / "pypath"
        pypath.mkdir()
        (pypath / "peers").symlink_to(PEERS_DIR, target_is_directory=True)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pypath), os.environ.get("PYTHONPATH", "")) if p
        )
        self.setenv(PROBE_ENV, str(self.probe_path))
        self.setenv(RUN_ENV, os.environ.get(RUN_ENV) or self.run_id)

    @property
    def probe_path(self) -> Path:
        return self.tmp / "probe"

    def setenv(self, name: str, value: str) -> None:
        """Set a variable here (for task modules imported by the driver) and for workers."""
        os.environ[name] = value
        self.env[name] = value

    def launch(self, name: str, argv: Sequence[str | Path]) -> Worker:
        """Start one worker in a new session (its own process group), stopped at the end."""
        if not self.workers:
            self.loadavg_before = os.getloadavg()
            self.cpu_busy_before = cpu_busy(1.0)
            self.launched_at = time.time()
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [str(a) for a in argv],
                cwd=self.tmp,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(name, popen, log)
        self.workers.append(worker)
        self.stack.callback(stop_group, popen)
        return worker

    def probes_done(self) -> int:
        try:
            return self.probe_path.stat().st_size // LINE
        except FileNotFoundError:
            return 0

    def _logs(self) -> str:
        return " | ".join(f"{w.name}: {w.tail()}" for w in self.workers if w.tail())

    def wait_all(self) -> int:
        """Poll until every task has probed; raise :class:`PeerError` at the deadline or
        when every worker has exited first."""
        deadline = time.monotonic() + self.timeout
        while (done := self.probes_done()) < self.tasks:
            if all(w.popen.poll() is not None for w in self.workers):
                time.sleep(0.5)  # a probe written just before the exit
                if (done := self.probes_done()) >= self.tasks:
                    break
                raise PeerError(
                    f"all workers exited after {done} of {self.tasks} tasks; logs: {self._logs()}"
                )
            if time.monotonic() > deadline:
                raise PeerError(
                    f"timed out after {self.timeout:.0f} s with {done} of {self.tasks} tasks "
                    f"done; logs: {self._logs()}"
                )
            time.sleep(POLL)
        time.sleep(0.3)  # so that a task executed twice shows up in the count
        return self.probes_done()

    def result(
        self, *, workers: int, config: str, versions: list[str], note: str = ""
    ) -> dict[str, Any]:
        """Wait for the tasks, then build the result line from the probe file."""
        executed = self.wait_all()
        stamps = [float(line) for line in self.probe_path.read_bytes().split()]
        first, last = min(stamps), max(stamps)
        seconds = last - first
        from_launch = last - self.launched_at
        measured = (
            f"{self.tasks} tasks enqueued before the workers started (not timed); seconds = first "
            "task start to last task finish, from time.time() written by each task body (one "
            "18-byte O_APPEND write, the only thing the no-op does); seconds_from_launch = from "
            "just before the worker processes were spawned to the last task finish"
        )
        return {
            "peer": self.peer,
            "tasks": self.tasks,
            "seconds": round(seconds, 4),
            "per_second": round(self.tasks / seconds, 1) if seconds > 0 else None,
            "workers": workers,
            "note": f"{config}; {measured}" + (f"; {note}" if note else ""),
            "config": config,
            "seconds_from_launch": round(from_launch, 4),
            "per_second_from_launch": round(self.tasks / from_launch, 1),
            "executed": executed,
            "versions": versions,
            "cpu_busy_before": round(self.cpu_busy_before, 3),
            "loadavg_before": [round(x, 2) for x in self.loadavg_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float) -> float:
    """Fraction of all CPUs busy (any process) over the next ``seconds``."""
    busy0, total0 = _cpu_times()
    time.sleep(seconds)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / max(total1 - total0, 1)


def stop_group(popen: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the worker's process group, SIGKILL it after ``grace`` seconds, and wait."""
    pgid = popen.pid  # start_new_session: the worker leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # children of the leader, reaped by init
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


# -- brokers ------------------------------------------------------------------------------


def redis_db(run: Run) -> str:
    """Claim an empty Redis database (15 down to 1) for this run and return its URL; at the
    end the database is flushed (everything in it was written by this run)."""
    import redis  # type: ignore[import-not-found, unused-ignore]

    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_URL}/{db}")
        try:
            if client.set(REDIS_CLAIM_KEY, run.run_id, nx=True):
                if client.dbsize() == 1:
                    run.stack.callback(_release_redis_db, client, run.run_id)
                    return f"{REDIS_URL}/{db}"
                client.delete(REDIS_CLAIM_KEY)
        except redis.exceptions.ConnectionError as e:
            client.close()
            raise PeerError(f"Redis at {REDIS_URL} not reachable: {e}") from e
        client.close()
    raise PeerError(f"no empty Redis database at {REDIS_URL} (1-15) could be claimed")


def _release_redis_db(client: Any, run_id: str) -> None:
    try:
        owner = client.get(REDIS_CLAIM_KEY)
        if owner is None or owner.decode() == run_id:
            client.flushdb()
    finally:
        client.close()


def redis_version() -> str:
    import redis  # type: ignore[import-not-found, unused-ignore]

    client = redis.Redis.from_url(REDIS_URL)
    try:
        info: dict[str, Any] = client.info("server")
        return f"Redis server {info.get('redis_version', '?')}"
    finally:
        client.close()


def pg_database(run: Run) -> str:
    """Create a scratch PostgreSQL database for this run (dropped at the end); return its DSN."""
    import psycopg
    from psycopg import sql

    name = f"taskyard_bench_peer_{run.run_id}"
    try:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as e:
        raise PeerError(f"PostgreSQL at {PG_DSN} not reachable: {e}".strip()) from e
    run.stack.callback(_drop_pg_database, name)
    return psycopg.conninfo.make_conninfo(PG_DSN, dbname=name)


def _drop_pg_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def pg_version() -> str:
    import psycopg

    with psycopg.connect(PG_DSN, connect_timeout=5) as conn:
        return f"PostgreSQL {conn.info.server_version // 10000}.{conn.info.server_version % 10000}"


# -- entry point ----------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # let the cleanup finish
    raise Interrupted(signal.Signals(signum).name)


def main(
    peer: str,
    body: Callable[[Run, argparse.Namespace], dict[str, Any]],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``--tasks``/``--timeout``, run ``body`` and print its one JSON line (or one with
    an ``error``); every process and scratch resource is cleaned up whatever happens."""
    parser = argparse.ArgumentParser(description=f"Throughput of {peer} on no-op tasks.")
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS)
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for the tasks"
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _interrupt)
    line: dict[str, Any]
    try:
        with contextlib.ExitStack() as stack:
            run = Run(peer, args.tasks, args.timeout, stack)
            line = body(run, args)
    except (PeerError, ImportError, OSError) as e:
        line = {"peer": peer, "tasks": args.tasks, "error": f"{type(e).__name__}: {e}"}
    except Interrupted as e:
        line = {"peer": peer, "tasks": args.tasks, "error": f"interrupted by {e}"}
    except Exception as e:  # the peer's own exceptions (broker errors, ...)
        line = {
            "peer": peer,
            "tasks": args.tasks,
            "error": f"{type(e).__module__}.{type(e).__name__}: {e}",
        }
    print(json.dumps(line), flush=True)
    return 1 if "error" in line else 0
