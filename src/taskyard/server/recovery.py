"""Attempts whose server died: find their processes, kill them, record them crashed.

On the embedded store one server per home holds the pidfile lock, so at start
every unfinished attempt of another instance is lost. Processes are found by
their ``TASKYARD_RUN`` tag (which also catches a process spawned just before
the crash, before its pid was recorded) and by (pid, start time) of the group
leader; a bare pid is never signalled.
"""

from __future__ import annotations

import logging

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


def recover(store: ServerStore, me: str, host: str, boot_id: str, dead_before: float) -> int:
    """Record every lost attempt as crashed; returns how many."""
    lost = store.lost_attempts(me, dead_before)
    if not lost:
        return 0
    killed = kill_leftovers(lost, host, boot_id)
    for attempt in lost:
        store.crash(attempt, by=f"server:{me}")
        log.warning("task %d attempt %d: its server %s died; recorded as crashed",
                    attempt.task_id, attempt.epoch, attempt.owner)
    if killed:
        log.warning("killed %d leftover process(es) of crashed attempts", killed)
    return len(lost)
