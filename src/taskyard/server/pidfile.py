"""The home's server lock: an ``flock`` on ``server.pid`` held for the server's life.

Exactly one server runs per home; a pidfile left by a dead process (its lock
went with it) never blocks a start. Light on imports: clients use it too.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from ..errors import UserError

LOCK_RETRY = 0.5


class AlreadyRunning(UserError):
    exit_code = 1


def running_message(pid: int | None) -> str:
    return f"already running (pid {pid})" if pid and pid > 0 else "already running (starting)"


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
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Never through a link: a root server (run_as) opens this in a home its user owns.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    handle = os.fdopen(fd, "r+")
    # A client probing with a shared lock (server_running) holds it for microseconds:
    # retry briefly so a probe never makes a start fail; a server holds it for good.
    deadline = time.monotonic() + LOCK_RETRY
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                pid, _ = read_pidfile(path)
                raise AlreadyRunning(running_message(pid)) from None
            time.sleep(0.01)


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


