"""Tracked tasks: work taskyard did not start, shown beside the tasks it did.

``Yard.track(...)`` (or ``taskyard track start``) records a ``running`` task of kind
``tracked`` owned by a process of this host, named by its pid and start time. The owner
reports progress, metadata and its end; operators steer it with custom signals, live
config and a graceful stop, as they steer a function task (the record wraps the same
:class:`~taskyard.context.Context`). When the owner dies without ending it, a server on
its host records it ``failed`` (``crashed``) at its next heartbeat.

A kill of a tracked task is applied by a server on the owner's host (it signals the
owner process) only when it was tracked ``killable``; otherwise it is a stop request
the owner reads with ``should_stop()``, refused if it does not within the kill's wait.
Nothing here signals a process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

from . import validate
from .context import Context
from .errors import InvalidInput, StaleAttempt, TransitionError
from .lifecycle import Reason, Status
from .model import JSON, Request, Task
from .store.base import ClientStore
from .store.tracked import TrackedOwner, TrackSpec


def identify(pid: int | None = None) -> TrackedOwner:
    """This host's process ``pid`` (default: this one) as an owner: (host, boot, pid,
    start time); refused if there is no such process."""
    from .server.procs import boot_id, hostname, start_time

    pid = os.getpid() if pid is None else validate.whole(pid, "pid", low=1, high=2**31 - 1)
    started = start_time(pid)
    if started is None:
        raise InvalidInput(f"no process {pid} on this host", field="pid")
    return TrackedOwner(0, 0, hostname(), boot_id(), pid, started, False)


def track(store: ClientStore, *, name: str | None = None, meta: Mapping[str, JSON] | None = None,
          queue: str = "default", tenant: str = "default", pid: int | None = None,
          killable: bool = False, by: str) -> Task:
    """Record running work owned by process ``pid`` (default: the caller)."""
    validate.check_name(name)
    text = validate.check_meta(meta or {})
    validate.check_queue(queue)
    if queue == "_hooks":
        raise InvalidInput("queue _hooks is the finish hooks' own", field="queue")
    validate.required_name(tenant, "tenant")
    if not isinstance(killable, bool):
        raise InvalidInput("killable must be true or false", field="killable")
    owner = identify(pid)._replace(killable=killable)
    return store.track(TrackSpec(name, text, queue, tenant), owner, by=by)


def require_owner(store: ClientStore, task_id: int, pid: int | None = None) -> TrackedOwner:
    """The owner of running tracked task ``task_id``, if process ``pid`` (default: the
    caller) is it; else a clear error: not tracked, not running, or not the owner."""
    owner = store.tracked_owner(task_id)
    if owner is None:
        task = store.get(task_id)
        if not task.tracked:
            raise InvalidInput(f"task {task_id} is a {task.kind} task, not a tracked one",
                               field="id")
        raise TransitionError(f"tracked task {task_id} is not running: it is {task.status}")
    caller = identify(pid)
    if (caller.host, caller.boot_id, caller.pid, caller.pid_start) != (
            owner.host, owner.boot_id, owner.pid, owner.pid_start):
        raise InvalidInput(f"process {caller.pid} on {caller.host} is not the owner of tracked"
                           f" task {task_id} (process {owner.pid} on {owner.host} is)",
                           field="pid")
    return owner


def end(store: ClientStore, owner: TrackedOwner, status: Status, message: str | None = None,
        *, by: str) -> Task:
    """The owner ends its task: succeeded, failed (``reported``, with ``message``) or
    stopped (``killed``)."""
    reason = {Status.FAILED: Reason.REPORTED, Status.STOPPED: Reason.KILLED}.get(status)
    if status is Status.FAILED:
        message = _message(message or "")
    try:
        return store.end_tracked(owner.task_id, owner.epoch, status, reason, message, by=by)
    except StaleAttempt:
        task = store.get(owner.task_id)
        raise TransitionError(f"tracked task {owner.task_id} is not running: it is"
                              f" {task.status}") from None


def _message(message: str) -> str:
    if not isinstance(message, str) or not message:
        raise InvalidInput("fail takes a message saying what went wrong", field="message")
    validate.check_unicode(message, "message")
    if len(message) > validate.MAX_MESSAGE:
        raise InvalidInput(f"the message is over {validate.MAX_MESSAGE} characters",
                           field="message")
    return message


def stop_asked(store: ClientStore, owner: TrackedOwner) -> bool:
    """Whether a stop was asked of the owner; reading it answers the stop request."""
    _, asked, _, _ = store.poll_task(owner.task_id)
    if asked != owner.epoch:
        return False
    store.read_tracked_stop(owner.task_id, owner.epoch)
    return True


def kill(store: ClientStore, task_id: int, number: int, *, by: str,
         timeout: float | None) -> None:
    """A kill of a running tracked task: the owner process is signalled (by a server on
    its host) when it was tracked killable; otherwise the owner is asked to stop and must
    read that (``should_stop()``) within ``timeout`` seconds, or the kill is refused."""
    from .ops import _apply, wait_for

    owner = store.tracked_owner(task_id)
    if owner is None:
        raise TransitionError(f"cannot kill task {task_id}: it is {store.get(task_id).status}")
    if owner.killable:
        _apply(store, task_id, "kill", {"signal": number, "escalate": False}, by, timeout)
        return
    request = store.request_tracked_stop(task_id, {"signal": number}, by=by)
    if timeout == 0:
        return
    if wait_for(lambda: _answered(store, request), timeout) is not None:
        return
    waited = f"{timeout:g}s"
    if store.withdraw_tracked_stop(request.id, f"its owner did not read it within {waited}"):
        raise TransitionError(
            f"cannot kill task {task_id}: it is tracked (taskyard did not start it) and its"
            f" owner, process {owner.pid} on {owner.host}, did not read the stop request"
            f" within {waited}; it is only signalled when tracked with killable=True")


def _answered(store: ClientStore, request: Request) -> Request | None:
    current = store.get_request(request.id)
    return current if current.state != "pending" else None


def is_live(store: ClientStore, task_id: int, lease: float) -> bool:
    """Whether the task is running (or paused) and whoever runs it lives: its server
    for a command or function, its owner process for a tracked task (judged on the
    owner's host; from another host, by its status, which a server there keeps)."""
    from .liveness import silent_owners
    from .server.procs import boot_id, hostname, start_time

    task = store.get(task_id)
    if not task.status.active:
        return False
    if not task.tracked:
        return not silent_owners(store, lease, [task_id])
    owner = store.tracked_owner(task_id)
    if owner is None:
        return False
    if owner.host != hostname():
        return True
    return owner.boot_id == boot_id() and start_time(owner.pid) == owner.pid_start


class Tracked:
    """A tracked task, as its owner holds it (``Yard.track``): report progress, metadata
    and the end; read signals, live config and a graceful stop. Usable as a context
    manager: finished at the end of the block, failed if it raised."""

    def __init__(self, store: ClientStore, task: Task, owner: TrackedOwner, *, by: str
                 ) -> None:
        self._store = store
        self._by = by
        self.owner = owner._replace(task_id=task.id, epoch=task.attempt)
        self.id = task.id
        self._ctx = Context(lambda: store, task.id, task.attempt)
        self._stop_read = False

    def _mine(self) -> None:
        if os.getpid() != self.owner.pid:
            raise InvalidInput(f"process {os.getpid()} is not the owner of tracked task"
                               f" {self.id} (process {self.owner.pid} is)", field="pid")

    @property
    def task(self) -> Task:
        """The task as stored now."""
        return self._store.get(self.id)

    def progress(self, done: float, total: float | None = None,
                 message: str | None = None) -> None:
        """Report progress (throttled like ``ctx.progress``; the last value lands)."""
        self._mine()
        self._ctx.progress(done, total, message)

    def emit(self, value: JSON) -> int:
        """Emit a message (a JSON value, at most 1 MiB), as ``ctx.emit`` does: stored at
        once, numbered from 0, fenced by the tracked attempt; returns its number."""
        self._mine()
        return self._ctx.emit(value)

    def meta(self, patch: Mapping[str, JSON]) -> dict[str, JSON]:
        """Merge-patch the task's metadata (RFC 7396); returns the result."""
        self._mine()
        if not isinstance(patch, Mapping):
            raise InvalidInput("meta takes a JSON object", field="meta")
        return self._ctx.update_meta(dict(patch))

    @property
    def config(self) -> dict[str, JSON]:
        """The live config operators set (``taskyard config ID``)."""
        return self._ctx.config

    def signals(self, clear: bool = True) -> list[dict[str, JSON]]:
        """Custom signals sent with ``taskyard signal`` not yet read."""
        self._mine()
        return self._ctx.signals(clear)

    def should_stop(self) -> bool:
        """True once a stop was asked (``kill``, ``kill --graceful``); reading it answers
        a kill's stop request: the owner is expected to wind down and call ``stop()``."""
        asked = self._ctx.should_stop()
        if asked and not self._stop_read:
            self._mine()
            self._store.read_tracked_stop(self.id, self.owner.epoch)
            self._stop_read = True
        return asked

    def finish(self) -> Task:
        """It succeeded."""
        return self._end(Status.SUCCEEDED)

    def fail(self, message: str) -> Task:
        """It failed (reason ``reported``, with ``message``)."""
        return self._end(Status.FAILED, message)

    def stop(self) -> Task:
        """It stopped before its end (status ``stopped``, reason ``killed``)."""
        return self._end(Status.STOPPED)

    def _end(self, status: Status, message: str | None = None) -> Task:
        self._mine()
        try:
            self._ctx.flush()
        except StaleAttempt:
            pass  # the end below says what it is
        return end(self._store, self.owner, status, message, by=self._by)

    def __enter__(self) -> Tracked:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.task.status.active:
            return
        if exc is None:
            self.finish()
        else:
            self.fail(f"{type(exc).__name__}: {exc}"[:validate.MAX_MESSAGE])

    def __repr__(self) -> str:
        return f"Tracked(id={self.id}, pid={self.owner.pid})"

