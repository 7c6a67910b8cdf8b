"""Tracked tasks of this host: owners that died, and kills of killable ones.

A tracked task's owner is a process taskyard did not start, named by (pid, start time)
on a host and boot. Every server looks at the owners on its host at each heartbeat, as
it looks at dead peers: an owner gone (or of an earlier boot) means the task ended
``failed`` (``crashed``). A kill of a task tracked ``killable`` is the one case where a
server signals a process it did not start: the owner, checked through a pidfd to be the
same process, gets the signal asked for, and the task is recorded ``stopped``.
"""

from __future__ import annotations

import logging
import os
import signal

from ..errors import StaleAttempt
from ..lifecycle import Reason, Status
from ..model import Request
from ..store.base import ServerStore
from ..store.tracked import TrackedOwner
from . import procs

log = logging.getLogger("taskyard.server")


def _alive(owner: TrackedOwner, boot_id: str) -> bool:
    return owner.boot_id == boot_id and procs.start_time(owner.pid) == owner.pid_start


def check_owners(store: ServerStore, host: str, boot_id: str, by: str) -> int:
    """Record ``crashed`` the tracked tasks of this host whose owner is gone; how many."""
    ended = 0
    for owner in store.tracked_on_host(host):
        if _alive(owner, boot_id):
            continue
        error = f"its owner, process {owner.pid}, ended without finishing it"
        try:
            store.end_tracked(owner.task_id, owner.epoch, Status.FAILED, Reason.CRASHED,
                              error, by=by)
        except StaleAttempt:
            continue  # it ended meanwhile
        log.warning("tracked task %d: %s; recorded as crashed", owner.task_id, error)
        ended += 1
    return ended


def apply_kills(store: ServerStore, host: str, boot_id: str, by: str) -> None:
    """Signal the owners of killable tracked tasks of this host that were killed."""
    for request in store.tracked_kills(host):
        owner = store.tracked_owner(request.task_id)
        if owner is None or owner.epoch != request.epoch or not owner.killable:
            store.complete_request(request.id, "rejected", "the task is not running")
            continue
        error = _signal_owner(owner, request, boot_id)
        if error is not None:
            store.complete_request(request.id, "rejected", error)
            continue
        try:
            store.end_tracked(owner.task_id, owner.epoch, Status.STOPPED, Reason.KILLED,
                              None, by=by)
        except StaleAttempt:
            pass  # it ended meanwhile: the signal was sent all the same
        store.complete_request(request.id, "done", None)


def _signal_owner(owner: TrackedOwner, request: Request, boot_id: str) -> str | None:
    """Send the kill's signal to the owner if it is still the same process; an error."""
    payload = request.payload if isinstance(request.payload, dict) else {}
    number = int(payload.get("signal", signal.SIGTERM))
    if owner.boot_id != boot_id:
        return "its owner process is gone"
    try:
        fd = os.pidfd_open(owner.pid)
    except OSError:
        return "its owner process is gone"
    try:
        # the pidfd pins the process: checked after opening it, the start time names it
        if procs.start_time(owner.pid) != owner.pid_start:
            return "its owner process is gone"
        signal.pidfd_send_signal(fd, number)
    except OSError as exc:
        return f"cannot signal its owner process {owner.pid}: {exc.strerror}"
    finally:
        os.close(fd)
    log.info("tracked task %d killed: signal %d sent to its owner, process %d",
             owner.task_id, number, owner.pid)
    return None
