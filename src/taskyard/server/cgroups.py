"""A whole-task memory limit: one memory cgroup per attempt with a memory limit.

Decided once at the server's start (``memory_cgroup = "auto"``): cgroup v2 where the
memory controller is delegated to the server's cgroup, else the cgroup v1 memory
controller where the server may make a child of its own memory cgroup, else none
(RLIMIT_AS per process, as before). The server makes ``taskyard-<instance>`` under its
own cgroup (v2: after moving itself into a leaf ``taskyard-server`` beside it, since a
v2 cgroup with processes cannot hand controllers to children) and, per attempt,
``task-<id>-<attempt>`` in it with the limit; the child writes itself into it between
fork and exec. At the leader's reaping: what is left in it is killed, its peak and
OOM kills read, and it is removed. ``memory-cgroup.json`` in the home names the
subtree, so the next server on the home removes what a dead one left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from . import cgroupfs
from .cgroupfs import Backend, Place

log = logging.getLogger("taskyard.server")

STATE_FILE = "memory-cgroup.json"
SUBTREE_PREFIX = "taskyard-"
SERVER_LEAF = "taskyard-server"  #: v2: where the server moves itself
LEFTOVER_WAIT = 5.0  #: seconds a start waits for killed leftovers to leave their cgroups


class Unusable(Exception):
    """Why no memory cgroup can be made here (one line, for the log and status)."""


@dataclass(eq=False)
class TaskCgroup:
    owner: MemoryCgroups
    path: Path
    procs_fd: int  #: its cgroup.procs, open for the child to write itself into

    def end(self) -> CgroupEnd:
        return self.owner.end(self)


@dataclass(frozen=True)
class CgroupEnd:
    """What a task's cgroup says once it ended."""

    peak_kib: int | None  #: the highest charge (memory of all its processes, page cache too)
    oom_kills: int  #: processes the OOM killer ended in it


@dataclass(eq=False)
class MemoryCgroups:
    backend: Backend | None = None
    subtree: Path | None = None
    why: str = ""  #: why there is none (when there is none)
    pending: list[Path] = field(default_factory=list)  #: cgroups to remove once empty

    @property
    def mode(self) -> str:
        return f"v{self.backend.version}" if self.backend is not None else "none"

    def describe(self) -> dict[str, Any]:
        """For ``server status --json``: how memory limits are enforced."""
        return {"mode": self.mode, "subtree": str(self.subtree) if self.subtree else None,
                "why": self.why or None}

    def summary(self) -> str:
        """One line for the log: how memory limits are enforced."""
        if self.subtree is not None:
            return f"memory limits: a cgroup {self.mode} per task, under {self.subtree}"
        return f"memory limits: RLIMIT_AS per process (no memory cgroup: {self.why})"

    def make(self, task_id: int, epoch: int, limit: int) -> TaskCgroup | None:
        """A cgroup for one attempt with ``limit`` bytes; None (logged: the task gets
        RLIMIT_AS instead) when there is no subtree or it cannot be made."""
        if self.backend is None or self.subtree is None:
            return None
        path = self.subtree / f"task-{task_id}-{epoch}"
        try:
            path.mkdir(exist_ok=True)
            cgroupfs.write(path / self.backend.limit, str(limit))
            if (path / self.backend.swap).exists():
                cgroupfs.write(path / self.backend.swap, self.backend.swap_value(limit))
            fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("task %d attempt %d: no memory cgroup (%s: %s); its memory limit is"
                        " RLIMIT_AS per process instead", task_id, epoch, path,
                        exc.strerror or exc)
            self.remove(path)
            return None
        return TaskCgroup(self, path, fd)

    def spawned(self, cg: TaskCgroup) -> None:
        """The child has its own copy of cgroup.procs (or is gone): close ours."""
        if cg.procs_fd >= 0:
            os.close(cg.procs_fd)
            cg.procs_fd = -1

    def discard(self, cg: TaskCgroup) -> None:
        """A cgroup its task did not run in (the spawn failed, the child could not join)."""
        self.spawned(cg)
        cgroupfs.kill_members(cg.path)
        self.remove(cg.path)

    def end(self, cg: TaskCgroup) -> CgroupEnd:
        """After the leader was reaped: kill what is left in it (escaped processes too),
        read its peak and OOM kills, remove it."""
        assert self.backend is not None
        self.spawned(cg)
        cgroupfs.kill_members(cg.path)
        peak = cgroupfs.read_int(cg.path / self.backend.peak)
        ended = CgroupEnd(peak // 1024 if peak is not None else None,
                          cgroupfs.count(cg.path / self.backend.events, "oom_kill"))
        self.remove(cg.path)
        return ended

    def remove(self, path: Path) -> bool:
        """rmdir a cgroup; one still holding a dying process is retried at sweep()."""
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                log.warning("cannot remove the cgroup %s: %s", path, exc.strerror or exc)
            if path not in self.pending:
                self.pending.append(path)
            return False
        return True

    def sweep(self) -> None:
        """Remove the cgroups that held processes still (at each heartbeat)."""
        if not self.pending:
            return
        waiting, self.pending = self.pending, []
        for path in waiting:
            cgroupfs.kill_members(path)
            self.remove(path)

    def close(self, home: Path) -> None:
        """At a clean stop: remove the subtree (and say it is gone) once empty."""
        self.sweep()
        if self.subtree is None:
            return
        if self.remove(self.subtree) and not self.pending:
            with contextlib.suppress(OSError):
                (home / STATE_FILE).unlink()


def start(settings: Settings, instance_id: str) -> MemoryCgroups:
    """Remove what a dead server of this home left, then decide how memory limits are
    enforced; kept in the home for ``server status`` (and logged by the caller after
    its start line: :meth:`MemoryCgroups.summary`)."""
    cgroups = MemoryCgroups()
    remove_leftovers(settings.home, cgroups)
    if settings.memory_cgroup == "off":
        cgroups.why = "memory_cgroup = off"
    else:
        try:
            cgroups.backend, cgroups.subtree = _make_subtree(
                cgroupfs.read_places(), SUBTREE_PREFIX + instance_id)
        except Unusable as exc:
            cgroups.why = str(exc)
    _save(settings.home, cgroups)
    return cgroups


def _save(home: Path, cgroups: MemoryCgroups) -> None:
    with contextlib.suppress(OSError):
        (home / STATE_FILE).write_text(json.dumps(cgroups.describe()))


def described(home: Path) -> dict[str, Any] | None:
    """What the server of ``home`` said of its memory cgroups (None: nothing readable)."""
    try:
        found = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _make_subtree(places: list[Place], name: str) -> tuple[Backend, Path]:
    """The first place where a subtree can be made: (its backend, the subtree)."""
    if not places:
        raise Unusable("this process is in no memory cgroup the server can see")
    reasons = []
    for place in places:
        try:
            if place.backend.version == 2:
                return place.backend, _make_v2(place, name)
            return place.backend, _make_v1(place, name)
        except Unusable as exc:
            reasons.append(str(exc))
        except OSError as exc:
            reasons.append(f"cgroup v{place.backend.version}: {place.path}:"
                           f" {exc.strerror or exc}")
    raise Unusable("; ".join(reasons))


def _make_v1(place: Place, name: str) -> Path:
    subtree = place.path / name
    subtree.mkdir(exist_ok=True)
    return subtree


def _make_v2(place: Place, name: str) -> Path:
    """Under a v2 cgroup with the memory controller: move the server into a leaf beside
    the subtree (no internal processes), enable memory for the children."""
    own = place.path
    if cgroupfs.MEMORY not in cgroupfs.controllers(own):
        raise Unusable(f"cgroup v2: the memory controller is not delegated to {own}"
                       " (systemd: Delegate=yes)")
    if cgroupfs.MEMORY not in (own / "cgroup.subtree_control").read_text().split():
        if not place.at_root:
            others = set(cgroupfs.members(own)) - {os.getpid()}
            if others:  # a shell's session, say: not the server's to divide
                raise Unusable(f"cgroup v2: {own} holds other processes too (pid"
                               f" {min(others)}...); give the server a cgroup of its own"
                               " (systemd: Delegate=yes)")
            leaf = own / SERVER_LEAF
            leaf.mkdir(exist_ok=True)
            cgroupfs.write(leaf / "cgroup.procs", str(os.getpid()))
        try:
            cgroupfs.write(own / "cgroup.subtree_control", "+memory")
        except OSError as exc:
            raise Unusable(f"cgroup v2: cannot enable memory for the children of {own}"
                           f" ({exc.strerror}: other processes in it?)") from None
    subtree = own / name
    subtree.mkdir(exist_ok=True)
    cgroupfs.write(subtree / "cgroup.subtree_control", "+memory")
    return subtree


def remove_leftovers(home: Path, cgroups: MemoryCgroups) -> None:
    """Kill the processes in the task cgroups a dead server of ``home`` left, and remove
    them and its subtree (what is still busy after LEFTOVER_WAIT is swept later)."""
    subtree = _previous_subtree(home)
    if subtree is None or not subtree.is_dir():
        return
    tasks = [p for p in subtree.iterdir() if p.is_dir() and p.name.startswith("task-")]
    killed = sum(cgroupfs.kill_members(p) for p in tasks)
    deadline = time.monotonic() + LEFTOVER_WAIT
    left = [*tasks, subtree]
    while left and time.monotonic() < deadline:
        left = [p for p in left if not _rmdir(p)]
        if left:
            time.sleep(0.05)
    cgroups.pending.extend(left)
    log.warning("removed the memory cgroups a previous server left under %s (%d"
                " process(es) killed)%s", subtree, killed,
                f"; {len(left)} still busy, removed later" if left else "")


def _previous_subtree(home: Path) -> Path | None:
    """The subtree named in the home's state file, if it is one of ours in a cgroup
    file system (a path written by anyone else is not acted on)."""
    found = described(home)
    text = found.get("subtree") if found else None
    if not isinstance(text, str):
        return None
    path = Path(text)
    try:
        mountinfo = (cgroupfs.PROC_SELF / "mountinfo").read_text()
    except OSError:
        return None
    if not (path.is_absolute() and ".." not in path.parts
            and path.name.startswith(SUBTREE_PREFIX)
            and path.name != SERVER_LEAF and cgroupfs.is_cgroup_dir(path, mountinfo)):
        return None
    return path


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
