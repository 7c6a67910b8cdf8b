"""Server entry: the pidfile lock, readiness, signals, recovery, the loop, a clean stop.

The pidfile is locked with ``flock`` for the server's whole life, so exactly
one server runs per home, and a pidfile left by a dead process (its lock went
with it) never blocks a start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO

from ..config import Settings
from ..errors import StoreError, UserError
from ..store import open_store
from ..store.base import Instance
from . import procs, recovery
from .loop import Server

log = logging.getLogger("taskyard.server")


class AlreadyRunning(UserError):
    exit_code = 1


def read_pidfile(path: Path) -> tuple[int | None, str | None]:
    try:
        text = path.read_text()
    except OSError:
        return None, None
    parts = text.split()
    pid = int(parts[0]) if parts and parts[0].isdigit() else None
    return pid, parts[1] if len(parts) > 1 else None


def lock_pidfile(path: Path) -> IO[str]:
    """Take the home's server lock or raise :class:`AlreadyRunning`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        pid, _ = read_pidfile(path)
        raise AlreadyRunning(f"already running (pid {pid})") from None
    return handle


def server_running(path: Path) -> int | None:
    """The pid of the server holding the lock on ``path``, or None if no server runs."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pidfile(path)[0] or -1
    finally:
        os.close(fd)
    return None


def _setup_logging(settings: Settings, stream: IO[str]) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("taskyard")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


class _Signals:
    """SIGTERM/SIGINT: first a warm stop, then a stop now. Delivered through a socket
    so the selector wakes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rsock, self.wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self.wsock.setblocking(False)
        signal.set_wakeup_fd(self.wsock.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)
        server.watch(self.rsock, self.on_signal)

    def on_signal(self) -> None:
        with contextlib.suppress(BlockingIOError):
            for number in self.rsock.recv(64):
                if number in (signal.SIGTERM, signal.SIGINT):
                    mode = "now" if self.server.stopping else "warm"
                    log.info("received %s", signal.Signals(number).name)
                    self.server.stop(mode)


def serve(settings: Settings, ready: IO[bytes] | None = None) -> int:
    """Run a server in this process until it is stopped. Returns the exit code."""
    lock = lock_pidfile(settings.pidfile)
    _setup_logging(settings, sys.stderr)
    instance_id = secrets.token_hex(6)
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()} {instance_id}\n")
    lock.flush()
    store = open_store(settings.db_path, synchronous=settings.synchronous)
    host, boot = procs.hostname(), procs.boot_id()
    now = time.time()
    store.register(Instance(instance_id, host, boot, os.getpid(), settings.effective_slots, now,
                            now, None, None))
    server = Server(settings, store, instance_id)
    wake = store.wake_listener()
    if wake is not None:
        server.watch(wake, lambda: server.on_hint(_drain(wake.sock)))
    _Signals(server)
    code = 0
    try:
        recovered = recovery.recover(store, instance_id, host, boot, dead_before=float("inf"))
        log.info("server %s started: pid %d, %d slot(s), home %s%s", instance_id, os.getpid(),
                 server.slots, settings.home,
                 f", {recovered} crashed attempt(s) recorded" if recovered else "")
        if ready is not None:
            ready.write(b"ok\n")
            ready.close()
            ready = None
        server.run_forever()
        store.unregister(instance_id, time.time())
        log.info("server %s stopped", instance_id)
    except StoreError as exc:
        code = 1
        log.critical("store write failed, stopping so memory and disk cannot diverge: %s", exc)
        server.kill_all()
    finally:
        if ready is not None:
            ready.write(b"error: server failed to start, see the log\n")
            ready.close()
        if wake is not None:
            wake.close()
        # Emptied, not unlinked: unlinking a locked pidfile lets two servers lock two inodes.
        with contextlib.suppress(OSError):
            lock.seek(0)
            lock.truncate()
        lock.close()
    return code


def _drain(sock: socket.socket) -> bytes:
    got = b""
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while len(got) < 4096:
            got += sock.recv(256)
    return got
