"""Frozen records read from the store, and the spec a submit is made of."""

from __future__ import annotations

from typing import Any, NamedTuple

from .lifecycle import Reason, Status
from .limits import NONE, Limits
from .rates import RateLimit

JSON = Any  # a value made only of dict, list, str, int, float, bool and None


def iso(ts: float | None) -> str | None:
    """A unix timestamp as ISO 8601 in UTC (``2026-11-22T23:52:20.123456Z``)."""
    if ts is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class TaskSpec(NamedTuple):
    """What a user asks to run. Validated by :mod:`taskyard.submit` before it is stored."""

    argv: tuple[str, ...]
    name: str | None = None
    queue: str = "default"
    env: dict[str, str] = {}
    cwd: str | None = None
    meta: dict[str, JSON] = {}
    stdin: bytes | None = None  #: fixed stdin contents (``--stdin-file``)
    stdin_open: bool = False  #: keep stdin as a pipe fed by ``taskyard send``
    timeout: float | None = None  #: seconds it may run before it is killed (reason timeout)
    priority: int = 0  #: higher runs first within the queue; equal priorities run FIFO
    run_at: float | None = None  #: do not start before this unix time (status scheduled)
    retries: int = 0  #: failed attempts retried at most this many times
    retry_delay: float = 1.0  #: seconds before the first retry
    backoff: str = "exponential"  #: fixed | exponential (delay doubles per retry), ±20 % jitter
    retry_on: tuple[str, ...] = ("exit", "signal", "timeout", "exception")  #: reasons retried
    after: tuple[int, ...] = ()  #: start only once these tasks succeeded
    unique: str | None = None  #: while a task with this key is live, submit returns that one
    mutex: str | None = None  #: at most one task with this key runs at a time
    tenant: str = "default"  #: whose task it is: runs only while its tenant is enabled
    function: str | None = None  #: a registered Python function to call instead of argv
    kwargs: dict[str, JSON] | None = None  #: its JSON keyword arguments
    #: data the task reads on file descriptors past 2 (``--fd 3=@FILE``), as LongTask
    #: programs read their parameters on the third descriptor
    fds: dict[int, bytes] = {}
    #: the command run when it ends (its finish hook; () for none, not even the queue's
    #: or the server's; None: the queue's, else the server's)
    on_finish: tuple[str, ...] | None = None
    keep: bool = False  #: never pruned by retention
    limits: Limits = NONE  #: resource limits; its queue's apply where it sets none
    rate_limit: RateLimit | None = None  #: at most N starts per sliding period for its key
    #: bytes of each stream kept from its start and from its end (None: the queue's,
    #: else the server's output_head_mib / output_tail_mib); a tail of 0 keeps the head only
    output_head: int | None = None
    output_tail: int | None = None


class Progress(NamedTuple):
    done: float | None = None
    total: float | None = None
    message: str | None = None

    def to_json(self) -> dict[str, JSON]:
        return {"done": self.done, "total": self.total, "message": self.message}


class Attempt(NamedTuple):
    """One run of a task. ``epoch`` is the fencing token: it only ever grows."""

    task_id: int
    epoch: int
    owner: str | None
    pid: int | None
    status: Status | None  #: the outcome, None while it runs
    reason: Reason | None
    exit_code: int | None
    signal: int | None
    error: str | None
    started_at: float
    finished_at: float | None
    report: str | None = None  #: ok | error: what the task last reported of itself
    report_message: str | None = None
    cpu_user: float | None = None  #: seconds of user CPU it used (None: not known)
    cpu_system: float | None = None
    max_rss_kib: int | None = None  #: its peak resident memory
    output_head: int | None = None  #: the output bounds it ran with (None: not recorded)
    output_tail: int | None = None
    #: the status file its server writes, fixed at its claim (None: no status files)
    status_file: str | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "attempt": self.epoch,
            "owner": self.owner,
            "pid": self.pid,
            "status": self.status,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "error": self.error,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "report": self.report,
            "report_message": self.report_message,
            "usage": ({"cpu_user": self.cpu_user, "cpu_system": self.cpu_system,
                       "max_rss_kib": self.max_rss_kib} if self.cpu_user is not None else None),
            "output_head": self.output_head,
            "output_tail": self.output_tail,
            "status_file": self.status_file,
        }


class Event(NamedTuple):
    """One status transition, written in the same transaction as the change."""

    task_id: int
    at: float
    from_status: Status | None
    to_status: Status
    by: str
    attempt: int
    detail: str | None

    def to_json(self) -> dict[str, JSON]:
        return {
            "at": iso(self.at),
            "from": self.from_status,
            "to": self.to_status,
            "by": self.by,
            "attempt": self.attempt,
            "detail": self.detail,
        }


class Task(NamedTuple):
    id: int
    name: str | None
    queue: str
    status: Status
    reason: Reason | None
    exit_code: int | None
    signal: int | None
    error: str | None
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None
    meta: dict[str, JSON]
    stdin_open: bool
    timeout: float | None
    priority: int
    run_at: float | None
    retries: int
    retried: int
    unique: str | None
    mutex: str | None
    tenant: str
    schedule: str | None  #: the cron schedule that fired it
    fire_at: float | None  #: the tick it was fired for
    function: str | None  #: registered function name (argv is empty then)
    kwargs: dict[str, JSON] | None
    result: JSON  #: the function's return value (None before it returned)
    config: dict[str, JSON]  #: live config, changed by operators while it runs
    steps: JSON  #: multi-step status, or None
    progress: Progress
    attempt: int  #: current (or last) attempt epoch; 0 before the first claim
    pid: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    fds: tuple[int, ...] = ()  #: the descriptors past 2 it was given data on
    on_finish: tuple[str, ...] | None = None  #: its own finish hook (see TaskSpec)
    hook_for: tuple[int, int] | None = None  #: a hook run: (task, attempt) it reports on
    keep: bool = False  #: never pruned by retention
    limits: Limits = NONE  #: its own resource limits (its queue's apply where unset)
    rate_limit: RateLimit | None = None  #: its own rate limit (its queue's rate applies too)
    output_head: int | None = None  #: its own output bounds (see TaskSpec)
    output_tail: int | None = None
    tracked: bool = False  #: work taskyard did not start (``Yard.track``): kind tracked

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def kind(self) -> str:
        """command | function | tracked."""
        return "tracked" if self.tracked else "function" if self.function else "command"

    def to_json(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "queue": self.queue,
            "status": self.status,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "error": self.error,
            "argv": list(self.argv),
            "env_keys": sorted(self.env),  # values may be secrets: never shown
            "cwd": self.cwd,
            "meta": self.meta,
            "stdin_open": self.stdin_open,
            "timeout": self.timeout,
            "priority": self.priority,
            "run_at": iso(self.run_at),
            "retries": self.retries,
            "retried": self.retried,
            "unique": self.unique,
            "mutex": self.mutex,
            "tenant": self.tenant,
            "schedule": self.schedule,
            "fire_at": iso(self.fire_at),
            "function": self.function,
            "kwargs": self.kwargs,
            "result": self.result,
            "config": self.config,
            "steps": self.steps,
            "progress": self.progress.to_json(),
            "attempt": self.attempt,
            "pid": self.pid,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "fds": list(self.fds),
            "on_finish": list(self.on_finish) if self.on_finish is not None else None,
            "hook_for": ({"task": self.hook_for[0], "attempt": self.hook_for[1]}
                         if self.hook_for else None),
            "keep": self.keep,
            "limits": self.limits.to_json(),
            "rate_limit": self.rate_limit.describe() if self.rate_limit else None,
            "output_head": self.output_head,
            "output_tail": self.output_tail,
        }


def hook_json(hook: Task) -> dict[str, JSON]:
    """A hook run, as the task it reported on lists it."""
    return {"id": hook.id, "attempt": hook.hook_for[1] if hook.hook_for else None,
            "status": hook.status, "reason": hook.reason, "exit_code": hook.exit_code}


class OutputRead(NamedTuple):
    """Bytes of one stream of one attempt, from ``offset``.

    ``total`` is the true number of bytes the task wrote so far. ``dropped`` is a
    ``(start, end)`` range inside the request that was discarded by the output
    bound (the head and the tail are kept), or None. ``data`` holds what is kept
    from ``offset`` on, after any dropped range was skipped: ``next_offset`` is
    where the next read continues.
    """

    stream: str
    offset: int
    data: bytes
    total: int
    dropped: tuple[int, int] | None
    next_offset: int
    finished: bool  #: the attempt ended: no byte will be added


class Request(NamedTuple):
    """A control request written by a user, applied by the server owning the attempt."""

    id: int
    task_id: int
    epoch: int
    kind: str  #: kill | pause | resume | stdin | eof
    payload: JSON
    created_at: float
    state: str  #: pending | done | rejected
    result: str | None


#: TaskSpec fields a cron schedule keeps for the tasks it fires (no stdin, no start
#: time, no dependencies: each tick is a fresh, independent task).
SCHEDULE_SPEC_FIELDS = ("argv", "name", "queue", "env", "cwd", "meta", "timeout", "priority",
                        "retries", "retry_delay", "backoff", "retry_on", "unique", "mutex",
                        "function", "kwargs", "on_finish", "keep", "limits",
                        "rate_limit", "output_head", "output_tail")


class Schedule(NamedTuple):
    """A cron schedule: each tick of ``expr`` in zone ``tz`` submits one task."""

    name: str
    expr: str
    tz: str
    tenant: str
    catch_up: str  #: none | one | all: which ticks missed during an outage are fired
    max_lag: float | None  #: seconds after its tick a missed tick may still fire
    spec: TaskSpec  #: what each tick submits
    paused: bool
    last_tick: float  #: ticks up to here are accounted for (fired or skipped)
    next_at: float | None  #: the next tick
    fired: int  #: tasks fired so far
    created_at: float

    def to_json(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "expr": self.expr,
            "tz": self.tz,
            "tenant": self.tenant,
            "catch_up": self.catch_up,
            "max_lag": self.max_lag,
            "paused": self.paused,
            "next_at": iso(self.next_at),
            "last_tick": iso(self.last_tick),
            "fired": self.fired,
            "created_at": iso(self.created_at),
            "task": {k: spec_value(v) for k, v in self.spec._asdict().items()
                     if k in SCHEDULE_SPEC_FIELDS},
        }


def spec_value(value: Any) -> Any:
    """A TaskSpec field as JSON takes it (tuples as lists, limits as an object)."""
    if isinstance(value, Limits):
        return value.to_json()
    if isinstance(value, RateLimit):
        return value.describe()
    return list(value) if isinstance(value, tuple) else value
