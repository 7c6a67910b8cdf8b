"""Attempts whose server died: find their processes, kill them, record them crashed.

A server is dead when it is silent for longer than the lease, or (found at once)
when it ran on this host since this boot and its process is gone. Every server
checks at start and at each heartbeat, so a dead peer's attempts are recorded
within a lease and a heartbeat. Processes are found by
their ``TASKYARD_RUN`` tag (which also catches a process spawned just before
the crash, before its pid was recorded) and by (pid, start time) of the group
leader; a bare pid is never signalled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from ..logs import log_event
from ..store.base import LostAttempt, ServerStore
from . import procs

log = logging.getLogger("taskyard.server")


def kill_leftovers(lost: list[LostAttempt], host: str, boot_id: str) -> int:
    """Kill the processes of lost attempts that ran on this host since this boot."""
    local = [a for a in lost if (a.host in (None, host)) and (a.boot_id in (None, boot_id))]
    killed = 0
    for attempt in local:
        if attempt.pid is not None and procs.kill_group_if_same(attempt.pid, attempt.pid_start):
            killed += 1
    killed += procs.kill_tagged({a.run_tag for a in local})
    return killed


def dead_peers(store: ServerStore, me: str, host: str, boot_id: str, now: float,
               lease: float, judge_silence: bool = True) -> list[str]:
    """Servers that are certainly gone: silent for longer than the lease, or on this
    host since this boot with their process gone. Each is fenced (marked stopped):
    if it was only frozen, its next heartbeat fails and it stops, killing its tasks.
    Without ``judge_silence`` (we were silent ourselves: whatever held us up, a lock
    on the store say, may have held them up too) only a gone process counts."""
    dead = []
    for peer in store.instances():
        if peer.id == me:
            continue
        local = peer.host == host and peer.boot_id == boot_id
        silent = judge_silence and peer.heartbeat_at < now - lease
        if silent or (local and not _alive(peer.pid)):
            store.fence(peer.id, now)
            dead.append(peer.id)
    return dead


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # a restarted server can get its predecessor's pid (pid 1...)
        return False
    return procs.pid_exists(pid)


def recover(store: ServerStore, me: str, host: str, boot_id: str, now: float,
            lease: float, judge_silence: bool = True,
            on_crashed: Callable[[LostAttempt], None] | None = None) -> int:
    """Fence dead servers and record their unfinished attempts crashed (killing what is
    left of them on this host); returns how many attempts. See dead_peers for
    ``judge_silence``."""
    for peer in dead_peers(store, me, host, boot_id, now, lease, judge_silence):
        log_event(log, "server.fence", f"server {peer} is gone (silent past its {lease:g}s"
                  " lease, or its process ended); taking over its attempts",
                  level=logging.WARNING, server=me, host=host, pid=os.getpid(), peer=peer)
    lost = store.lost_attempts(me, now - lease if judge_silence else float("-inf"))
    if not lost:
        return 0
    killed = kill_leftovers(lost, host, boot_id)
    for attempt in lost:
        store.crash(attempt, by=f"server:{me}")
        log.warning("task %d attempt %d: its server %s died; recorded as crashed",
                    attempt.task_id, attempt.epoch, attempt.owner)
        if on_crashed is not None and attempt.host in (None, host):
            on_crashed(attempt)
    if killed:
        log.warning("killed %d leftover process(es) of crashed attempts", killed)
    return len(lost)
