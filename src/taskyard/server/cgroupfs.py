"""Memory cgroups as files: where this process's own memory cgroup is (from the text of
/proc/self/cgroup and /proc/self/mountinfo, parsed by pure functions), and what each
version of cgroups names its files (v2: ``memory.max``, ``memory.peak``,
``memory.events``; v1: ``memory.limit_in_bytes``, ``memory.max_usage_in_bytes``,
``memory.oom_control``).

The server's use of them (a subtree, one cgroup an attempt) is ``cgroups.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

PROC_SELF = Path("/proc/self")
MEMORY = "memory"


@dataclass(frozen=True)
class Mount:
    root: str  #: the cgroup shown at the mount point ("/" unless a namespace or bind)
    point: str  #: where it is mounted
    fstype: str  #: cgroup (v1) or cgroup2
    options: frozenset[str]  #: super options: a v1 hierarchy's controllers are there


@dataclass(frozen=True)
class Backend:
    """What a cgroup version names the files of the memory controller."""

    version: int
    limit: str  #: the limit, in bytes
    swap: str  #: the limit with swap (v1: memory+swap; v2: swap alone)
    peak: str  #: the highest charge, in bytes
    events: str  #: the file with the ``oom_kill N`` line

    def swap_value(self, limit: int) -> str:
        """No swap beyond the limit: v2 counts swap apart (0), v1 memory and swap together."""
        return "0" if self.version == 2 else str(limit)


V1 = Backend(1, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
             "memory.max_usage_in_bytes", "memory.oom_control")
V2 = Backend(2, "memory.max", "memory.swap.max", "memory.peak", "memory.events")


@dataclass(frozen=True)
class Place:
    """A memory cgroup this process is in, and how to use it."""

    backend: Backend
    path: Path  #: its directory
    at_root: bool  #: it is the root of its hierarchy (v2: exempt from "no internal processes")


def own_cgroups(text: str) -> dict[str, str]:
    """/proc/self/cgroup as {controller: path}; the v2 (unified) line under ``""``.
    ``4:memory:/a/b`` gives {"memory": "/a/b"}; ``0::/a`` gives {"": "/a"}."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        if number == "0" and controllers == "":
            found[""] = path
            continue
        for name in controllers.split(","):
            found.setdefault(name, path)
    return found


def _unescape(field: str) -> str:
    """Mountinfo writes a space as ``\\040`` (and tab, newline, backslash alike)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def cgroup_mounts(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of /proc/self/mountinfo."""
    found = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        found.append(Mount(_unescape(fields[3]), _unescape(fields[4]), rest[0],
                           frozenset(rest[2].split(","))))
    return found


def _under(mount: Mount, path: str) -> tuple[Path, bool] | None:
    """The directory of cgroup ``path`` in ``mount`` and whether it is the mount's root
    (None: the cgroup is not visible there)."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    rest = path[len(root):].strip("/")
    return (Path(mount.point) / rest if rest else Path(mount.point)), not rest


def places(cgroup_text: str, mountinfo_text: str) -> list[Place]:
    """Where this process's memory cgroup may be, v2 first: the unified hierarchy's
    directory (whether its memory controller is there is for the files to say), then a
    v1 hierarchy holding ``memory``."""
    own, mounts = own_cgroups(cgroup_text), cgroup_mounts(mountinfo_text)
    found = []
    if "" in own:
        for mount in (m for m in mounts if m.fstype == "cgroup2"):
            at = _under(mount, own[""])
            if at is not None:
                found.append(Place(V2, *at))
                break
    if MEMORY in own:
        for mount in (m for m in mounts if m.fstype == "cgroup" and MEMORY in m.options):
            at = _under(mount, own[MEMORY])
            if at is not None:
                found.append(Place(V1, *at))
                break
    return found


def read_places() -> list[Place]:
    """:func:`places` of this process ([] where /proc cannot be read)."""
    try:
        return places((PROC_SELF / "cgroup").read_text(),
                      (PROC_SELF / "mountinfo").read_text())
    except OSError:
        return []


def is_cgroup_dir(path: Path, mountinfo_text: str) -> bool:
    """Whether ``path`` lies under a cgroup mount of ``mountinfo_text`` (a path read from
    a file in the home is acted on only then)."""
    text = os.path.normpath(str(path))
    return any(text.startswith(m.point.rstrip("/") + "/") for m in cgroup_mounts(mountinfo_text))


def controllers(path: Path) -> list[str]:
    """The v2 controllers a cgroup may use (``cgroup.controllers``)."""
    return (path / "cgroup.controllers").read_text().split()


def write(path: Path, value: str) -> None:
    """One write of a cgroup file, as the kernel wants it (no truncation, no buffering)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_int(path: Path) -> int | None:
    """A number file (``max`` or a missing file: None)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def count(path: Path, key: str) -> int:
    """The value of a ``key N`` line of a flat keyed file (0 when missing)."""
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    return 0


def members(path: Path) -> list[int]:
    """The processes in a cgroup (``cgroup.procs``; [] once it is gone)."""
    try:
        return [int(pid) for pid in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def kill_members(path: Path, rounds: int = 20) -> int:
    """SIGKILL every process in a cgroup; returns how many were signalled. A pid is
    signalled through a pidfd opened while it was listed, and only if it is listed
    still after that (so a pid reused meanwhile by a process elsewhere is never hit);
    a few rounds catch processes forked meanwhile."""
    if (path / "cgroup.kill").exists():  # v2, Linux 5.14+: the kernel does it all at once
        with contextlib.suppress(OSError):
            write(path / "cgroup.kill", "1")
            return len(members(path))
    signalled: set[int] = set()
    for _ in range(rounds):
        pidfds = {}
        for pid in set(members(path)) - signalled:
            with contextlib.suppress(OSError):
                pidfds[pid] = os.pidfd_open(pid)
        if not pidfds:
            break
        still = set(members(path))
        for pid, fd in pidfds.items():
            with contextlib.suppress(OSError):
                if pid in still:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    signalled.add(pid)
            os.close(fd)
    return len(signalled)
