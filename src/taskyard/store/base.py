"""The store interface. Only modules under ``taskyard.store`` write SQL.

The store is the queue and the single source of truth. Clients (CLI, Python
API, HTTP API) use the *client* half; a server uses the *server* half, whose
writes after a claim are all fenced by ``(task id, epoch, owner)`` and raise
:class:`~taskyard.errors.StaleAttempt` when the attempt is no longer theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType
from typing import NamedTuple, Protocol

from ..lifecycle import Reason, Status
from ..model import JSON, Attempt, Event, OutputRead, Request, Schedule, Task, TaskSpec


class Claim(NamedTuple):
    """A task a server just claimed: everything needed to spawn it."""

    task_id: int
    epoch: int
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None
    stdin: bytes | None
    stdin_open: bool
    run_tag: str  #: TASKYARD_RUN value: finds the attempt's processes after a crash
    timeout: float | None = None  #: seconds it may run
    run_as: str | None = None  #: user to run it as (its tenant's login), None: the server's


class Spawned(NamedTuple):
    task_id: int
    epoch: int
    pid: int
    pid_start: int | None  #: process start time (clock ticks since boot), with pid it names one process


class Outcome(NamedTuple):
    """How an attempt ended. ``status`` is terminal."""

    task_id: int
    epoch: int
    status: Status
    reason: Reason | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None


class OutputWrite(NamedTuple):
    """Bytes for one stream: ``data`` starts at ``offset``; chunks ending at or
    before ``drop_before`` (outside the kept head) may be deleted; ``total`` is
    the true byte count so far."""

    task_id: int
    epoch: int
    stream: str
    offset: int
    data: bytes
    total: int
    drop_before: int
    head: int


class Batch:
    """A server tick's writes, applied in one transaction (in this order)."""

    __slots__ = ("claim", "outcomes", "output", "spawned")

    def __init__(self, spawned: list[Spawned] | None = None,
                 output: list[OutputWrite] | None = None,
                 outcomes: list[Outcome] | None = None, claim: int = 0) -> None:
        self.spawned = spawned or []
        self.output = output or []
        self.outcomes = outcomes or []
        self.claim = claim  #: claim up to this many queued tasks

    def __bool__(self) -> bool:
        return bool(self.spawned or self.output or self.outcomes or self.claim)


class BatchResult(NamedTuple):
    stale: list[int]  #: tasks whose output or outcome was fenced off: not ours any more
    claims: list[Claim]
    dependents: bool = False  #: a task that ended has tasks waiting for it (--after)


class LostAttempt(NamedTuple):
    """An unfinished attempt whose owner is dead."""

    task_id: int
    epoch: int
    owner: str
    host: str | None
    boot_id: str | None
    pid: int | None
    pid_start: int | None
    run_tag: str


class Instance(NamedTuple):
    id: str
    host: str
    boot_id: str
    pid: int
    slots: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    stop_request: str | None


class ClientStore(Protocol):
    def submit(self, spec: TaskSpec, *, by: str) -> Task: ...
    def get(self, task_id: int) -> Task: ...
    def list_tasks(self, *, status: Sequence[Status] = (), queue: str | None = None,
             limit: int | None = None) -> list[Task]: ...
    def attempts(self, task_id: int) -> list[Attempt]: ...
    def events(self, task_id: int) -> list[Event]: ...
    def read_output(self, task_id: int, stream: str, offset: int, limit: int | None,
                    epoch: int | None = None) -> OutputRead: ...
    def cancel(self, task_id: int, *, by: str) -> Task | None: ...
    def add_request(self, task_id: int, kind: str, payload: JSON, *, by: str) -> Request: ...
    def get_request(self, request_id: int) -> Request: ...
    def restart(self, task_id: int, *, by: str) -> Task: ...
    def delete(self, task_id: int) -> None: ...
    def patch_meta(self, task_id: int, patch: dict[str, JSON], max_bytes: int) -> Task: ...
    def set_progress(self, task_id: int, epoch: int, done: float | None, total: float | None,
                     message: str | None) -> None: ...
    def instances(self) -> list[Instance]: ...
    def add_schedule(self, sched: Schedule) -> Schedule: ...
    def get_schedule(self, name: str) -> Schedule: ...
    def schedules(self) -> list[Schedule]: ...
    def remove_schedule(self, name: str) -> None: ...
    def set_schedule_paused(self, name: str, paused: bool) -> Schedule: ...
    def run_schedule(self, name: str, *, by: str) -> Task: ...
    def request_stop(self, instance_id: str, mode: str) -> None: ...
    def set_queue_paused(self, name: str, paused: bool) -> None: ...
    def set_queue_parallel(self, name: str, parallel: int | None) -> None: ...
    def add_tenant(self, name: str, *, enabled: bool = True, run_as: str | None = None,
                   parallel: int | None = None) -> dict[str, JSON]: ...
    def update_tenant(self, name: str, *, enabled: bool | None = None,
                      run_as: str | None | EllipsisType = ...,
                      parallel: int | None | EllipsisType = ...) -> dict[str, JSON]: ...
    def tenants(self) -> list[dict[str, JSON]]: ...
    def queues(self) -> list[dict[str, JSON]]: ...
    def wake(self, kind: bytes = b"w") -> None: ...
    def close(self) -> None: ...


class ServerStore(ClientStore, Protocol):
    def register(self, instance: Instance) -> None: ...
    def heartbeat(self, instance_id: str, now: float) -> Instance: ...
    def unregister(self, instance_id: str, now: float) -> None: ...
    def fence(self, instance_id: str, now: float) -> None: ...
    def apply(self, owner: str, batch: Batch) -> BatchResult: ...
    def promote_due(self, now: float, by: str) -> int: ...
    def fire_schedules(self, now: float, by: str) -> tuple[int, float | None]: ...
    def next_tick(self) -> float | None: ...
    def next_due(self) -> float | None: ...
    def claim(self, owner: str, limit: int) -> list[Claim]: ...
    def record_spawned(self, owner: str, spawned: Sequence[Spawned]) -> None: ...
    def finish(self, owner: str, outcomes: Sequence[Outcome],
               output: Sequence[OutputWrite] = ()) -> list[int]: ...
    def append_output(self, owner: str, writes: Sequence[OutputWrite]) -> None: ...
    def pending_requests(self, owner: str) -> list[Request]: ...
    def complete_request(self, request_id: int, state: str, result: str | None) -> None: ...
    def set_paused(self, owner: str, task_id: int, epoch: int, paused: bool, by: str) -> None: ...
    def lost_attempts(self, me: str, dead_before: float) -> list[LostAttempt]: ...
    def crash(self, attempt: LostAttempt, by: str) -> None: ...
