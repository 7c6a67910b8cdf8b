"""Whether the servers that own running tasks are alive, judged from the store the way
servers judge each other (``server/recovery.py``): a server is gone when it stopped
or was fenced, when its heartbeat is older than the lease, or when it ran on this
host since this boot and its process is gone. A client that reads a shared store
from a home of its own judges by the store, not by its home's pidfile."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import NamedTuple

from .store.base import ClientStore, Instance, Owner


class Silent(NamedTuple):
    """A server that owns running (or paused) tasks and is not alive."""

    owner: Owner
    tasks: tuple[int, ...]  #: the tasks asked about that it owns
    heard: float | None  #: seconds since its last heartbeat (None: the store has no row)
    pid_gone: bool  #: it ran on this host and its process is gone


def _pid_gone(host: str | None, boot_id: str | None, pid: int | None) -> bool:
    """It ran on this host since this boot (and pid namespace), and its pid is gone."""
    from .server.procs import boot_id as this_boot
    from .server.procs import hostname, pid_exists

    if pid is None or host != hostname() or boot_id != this_boot():
        return False
    return pid == os.getpid() or not pid_exists(pid)  # we are no server: not ours


def alive(server: Instance | Owner, lease: float, now: float) -> bool:
    """Heard within the lease, not stopped nor fenced, and not a process gone from here."""
    if server.heartbeat_at is None or server.stopped_at is not None:
        return False
    if server.heartbeat_at < now - lease:
        return False
    return not _pid_gone(server.host, server.boot_id, server.pid)


def silent_owners(store: ClientStore, lease: float, tasks: Collection[int] | None = None,
                  now: float | None = None) -> list[Silent]:
    """The servers owning running or paused tasks (of ``tasks``, if given) that are not
    alive: their tasks will be recorded ``crashed`` by a live server within a lease and
    a heartbeat, or by the next one to start."""
    now = time.time() if now is None else now
    found = []
    for owner in store.active_owners():
        mine = owner.tasks if tasks is None else tuple(t for t in owner.tasks if t in tasks)
        if not mine or alive(owner, lease, now):
            continue
        heard = None if owner.heartbeat_at is None else max(0.0, now - owner.heartbeat_at)
        found.append(Silent(owner, mine, heard,
                            _pid_gone(owner.host, owner.boot_id, owner.pid)))
    return found


def any_alive(store: ClientStore, lease: float, now: float | None = None) -> bool:
    """Whether some server on the store is alive (it will take over silent ones' tasks)."""
    now = time.time() if now is None else now
    return any(alive(server, lease, now) for server in store.instances())
