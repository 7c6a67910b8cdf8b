"""Helpers for tests of taskyard and of code that uses it: a real server in a
subprocess on a temporary home, and ``wait_for`` instead of sleeps.

Testing your own code that submits tasks, from pytest
------------------------------------------------------

``Yard.memory()`` is a complete store in memory (no file; gone when closed): for
code that only submits, lists or inspects tasks::

    @pytest.fixture
    def yard():
        with Yard.memory() as y:
            yield y

    def test_the_nightly_job_is_queued(yard):
        myapp.schedule_nightly(yard)              # your code, given the Yard
        (task,) = yard.list(status="queued")
        assert task.argv == ("backup", "--full")

``Yard.inline()`` also runs each task when it is submitted, in the test's own
process, and returns it ended, recorded as a server records it (result, output,
progress, events, retries, ``after`` chains). Import the modules that register
your task functions first::

    import myapp.tasks                            # registers @app.task functions

    @pytest.fixture
    def yard():
        with Yard.inline() as y:
            yield y

    def test_resize(yard):
        task = yard.submit_function("resize", {"path": "a.png", "width": 200})
        assert task.status is Status.SUCCEEDED
        assert yard.result(task.id) == {"path": "a.png", "width": 200}

    def test_resize_gives_up_on_a_missing_file(yard):
        task = yard.submit_function("resize", {"path": "nope.png", "width": 1})
        assert (task.status, task.reason) == (Status.FAILED, Reason.EXCEPTION)
        assert b"FileNotFoundError" in yard.logs(task.id, stream="stderr").data

Code that submits through ``App`` (``resize.submit(...)``) uses the app's Yard:
give it the test's, ``app.use(yard)`` in the fixture (``app.use(None)`` after). Commands run as real child
processes, synchronously. Tasks not due yet (``delay``, ``after`` unfinished
tasks) stay scheduled until ``yard.run_pending()`` finds them due. An operator
acting while a task runs (signals, config, ``stop_gracefully``, ``kill``) acts
from another thread, since the test's thread is inside the task; pause is refused
(nothing can hold the test's thread still). For what only a server does (workers, crashes, several
servers), use ``running_server(home)`` and a ``Yard(home)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .ops import wait_for as poll

T = TypeVar("T")


class Timeout(AssertionError):
    pass


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01,
             message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    value = poll(predicate, timeout, interval=interval, max_interval=0.1)
    if not value:
        raise Timeout(f"{message} not met within {timeout}s")
    return value


def cli(home: Path | str, *args: str, input: bytes | None = None, check: bool = False,
        timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run ``taskyard --home HOME ARGS...`` as a user would."""
    return subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), *args],
                          input=input, capture_output=True, check=check, timeout=timeout)


def server_process(home: Path | str, *extra: str, env: dict[str, str] | None = None,
                   web: bool = False) -> subprocess.Popen[bytes]:
    """Start ``taskyard server start --foreground`` and return once it is ready
    (without its web process unless ``web`` or ``--web-listen`` in ``extra``)."""
    if not web and "--web-listen" not in extra:
        extra = (*extra, "--no-web")
    read_end, write_end = os.pipe()
    full_env = dict(os.environ if env is None else env, TASKYARD_READY_FD=str(write_end))
    Path(home).mkdir(parents=True, exist_ok=True)
    log = open(Path(home) / "server.log", "ab")  # handed to the child, closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskyard", "--home", str(home), "server", "start",
         "--foreground", *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full_env, pass_fds=(write_end,))
    log.close()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        answer = ready.read()
    if answer.split(b"\n")[0].strip() != b"ok":
        proc.wait(10)
        raise RuntimeError(f"server did not start: {answer!r}; log: {Path(home) / 'server.log'}")
    return proc


@contextmanager
def running_server(home: Path | str, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A server for the duration of the block; stopped with SIGTERM twice (then KILL)."""
    proc = server_process(home, *extra)
    try:
        yield proc
    finally:
        stop_server(proc)


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # warm stop ...
    try:
        proc.wait(0.3)
        return
    except subprocess.TimeoutExpired:
        pass
    # ... then a second SIGTERM, apart from the first (two at once arrive as one): stop now
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pids_with_tag(prefix: str) -> Sequence[int]:
    """Live processes whose TASKYARD_RUN starts with ``prefix`` (for orphan checks)."""
    from .server.procs import run_tag

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        tag = run_tag(int(entry.name))
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if tag is not None and tag.startswith(prefix) and stat[stat.rfind(")") + 2] != "Z":
            found.append(int(entry.name))
    return found


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts until it is reaped)."""
    from .server.procs import pid_exists

    return pid_exists(pid)


def instance_id(home: Path | str) -> str:
    """The id of the server instance running on ``home``."""
    return (Path(home) / "server.pid").read_text().split()[1]


def instance_of(home: Path | str) -> str:
    """The TASKYARD_RUN prefix of the server instance running on ``home``."""
    return instance_id(home) + "."


@contextmanager
def postgres_schema(dsn: str, prefix: str = "scratch") -> Iterator[str]:
    """A ``postgresql://`` URL whose tables live in a fresh schema of ``dsn``'s
    database, dropped afterwards (for tests and benchmarks)."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}options={quote(f'-c search_path={schema}')}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def free_port() -> int:
    """A TCP port nobody listens on right now (for a test's web process)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def web_process(home: Path | str, *extra: str, env: dict[str, str] | None = None,
                port: int | None = None) -> Iterator[str]:
    """``taskyard web`` on a free port of 127.0.0.1 for the block; yields its base URL
    (with the root path given by ``--root-path`` in ``extra``, if any) once /health
    answers."""
    import urllib.request

    port = port or free_port()
    Path(home).mkdir(parents=True, exist_ok=True)
    log = open(Path(home) / "web.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskyard", "--home", str(home), "web",
         "--listen", f"127.0.0.1:{port}", *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    log.close()
    root = extra[extra.index("--root-path") + 1].rstrip("/") if "--root-path" in extra else ""
    base = f"http://127.0.0.1:{port}{root}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"taskyard web exited {proc.returncode}; log: {home}/web.log")
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=30, message="taskyard web answers /health")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_token(home: Path | str, role: str = "admin", *extra: str,
               env: dict[str, str] | None = None) -> str:
    """A new API token's secret (``taskyard token create --role ROLE EXTRA...``)."""
    import json

    done = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), "token",
                           "create", "--role", role, *extra, "--json"],
                          capture_output=True, check=True, env=env)
    return str(json.loads(done.stdout)["token"])
