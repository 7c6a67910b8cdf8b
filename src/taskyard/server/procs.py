"""Process facts: start times, boot id, finding an attempt's processes after a crash,
and how many tasks the file descriptor limit holds.

A pid alone never identifies a process (it is reused); (pid, start time, boot
id) does, and so does the ``TASKYARD_RUN`` tag every task process inherits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Collection, Iterator
from pathlib import Path

PROC = Path("/proc")
log = logging.getLogger("taskyard.server")


def boot_id() -> str:
    """Where this process's pids mean something: the kernel's boot id and the pid
    namespace. Two servers in containers of one host may share a host name and a
    boot id (and both be pid 1); only with the same namespace can one judge the
    other's pid."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"
    try:
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return boot
    return f"{boot}/{namespace}"


def hostname() -> str:
    return socket.gethostname()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: start time in clock ticks since boot."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(b")") + 2:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def group_rss(groups: Collection[int]) -> dict[int, int]:
    """Resident memory (KiB) of each process group in ``groups``, summed over its
    processes, from one pass over /proc (fields 5, the group, and 24, resident pages,
    of /proc/PID/stat). Memory shared between them is counted once per process."""
    wanted = set(groups)
    found: dict[int, int] = {}
    if not wanted:
        return found
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:  # gone meanwhile
            continue
        rest = raw[raw.rfind(b")") + 2:].split()
        try:
            group, pages = int(rest[2]), int(rest[21])
        except (IndexError, ValueError):
            continue
        if group in wanted:
            found[group] = found.get(group, 0) + pages * page_kib
    return found


def run_tag(pid: int) -> str | None:
    """The TASKYARD_RUN value in the environment of ``pid``, if readable."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(b"TASKYARD_RUN="):
            return item[13:].decode(errors="replace")
    return None


def tagged(tags: Collection[str]) -> Iterator[int]:
    """Pids of live processes whose environment carries one of ``tags``."""
    if not tags:
        return
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if pid != os.getpid() and run_tag(pid) in tags:
                yield pid


def kill_tagged(tags: Collection[str]) -> int:
    """SIGKILL every process tagged with one of ``tags``; returns how many.

    Each is opened as a pidfd and its tag checked again through it before the
    signal, so a pid reused in between is never hit.
    """
    killed = 0
    for pid in list(tagged(tags)):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if run_tag(pid) in tags:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                killed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return killed


def kill_group_if_same(pid: int, pid_start: int | None) -> bool:
    """SIGKILL the process group led by ``pid`` only if that pid is still the
    process that started at ``pid_start``."""
    if pid_start is None or start_time(pid) != pid_start:
        return False
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
        return True
    return False


FDS_PER_TASK = 6  #: pipes' both ends, a pidfd, an open stdin
FDS_PER_WORKER = 5  #: a function worker's pipes and pidfd, held while it lives
FDS_RESERVED = 32  #: the store, epoll, sockets, the pidfile, the log...


def fd_limit() -> int:
    """This process's soft limit on open file descriptors (-1: none)."""
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fds_free(n: int) -> bool:
    """Whether ``n`` more file descriptors can be opened now (opened and closed)."""
    opened: list[int] = []
    try:
        for _ in range(n):
            opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        return True
    except OSError:
        return False
    finally:
        for fd in opened:
            os.close(fd)


def slots_within_fd_limit(slots: int, workers: bool = False) -> int:
    """``slots``, or fewer if the file descriptor limit cannot hold that many tasks (and,
    with ``workers``, a function worker per slot); a spawn short of descriptors later
    fails its task, see Spawner.starved."""
    limit = fd_limit()
    if limit < 0:  # RLIM_INFINITY
        return slots
    per_slot = FDS_PER_TASK + (FDS_PER_WORKER if workers else 0)
    fits = (limit - FDS_RESERVED) // per_slot
    if fits < 1:
        log.warning("the file descriptor limit (ulimit -n) is %d: too low for even one task"
                    " beside the server's own ~%d; tasks will fail with 'Too many open"
                    " files' until it is %d or more", limit, FDS_RESERVED,
                    FDS_RESERVED + per_slot)
        return 1
    if fits < slots:
        log.warning("%d slot(s) need about %d file descriptors but the limit (ulimit -n) is"
                    " %d: running at most %d task(s) at once", slots,
                    FDS_RESERVED + slots * per_slot, limit, fits)
        return fits
    return slots



def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
