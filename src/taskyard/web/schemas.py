"""The HTTP API's JSON shapes (pydantic): request bodies, checked strictly (unknown
fields and wrong types are refused, naming the field), and responses, the same
shapes as the CLI's ``--json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -------------------------------------------------------------------------


class SubmitBody(Body):
    """A command (``argv``) or a registered function (``function`` + ``kwargs``), with
    the CLI's submit options."""

    argv: list[str] | None = Field(default=None, description="the command and its arguments")
    function: str | None = Field(default=None, description="a registered function's name")
    kwargs: dict[str, Any] | None = Field(default=None, description="its JSON keyword arguments")
    name: str | None = None
    queue: str = "default"
    env: dict[str, str] = {}
    cwd: str | None = None
    meta: dict[str, Any] = {}
    stdin: str | None = Field(default=None, description="fixed stdin contents, as text")
    stdin_base64: str | None = Field(default=None, description="fixed stdin contents, base64")
    stdin_open: bool = Field(default=False, description="keep stdin open for POST .../stdin")
    fds: dict[str, str] = Field(default={}, description="descriptor (3-255) -> data to read"
                                " on it, as text")
    fds_base64: dict[str, str] = Field(default={}, description="the same, base64")
    priority: int = 0
    at: str | None = Field(default=None, description="start time, ISO 8601 (no zone: UTC)")
    delay: str | float | None = Field(default=
        None, description="start after this long: seconds, or 30s, 10m, 1h30m")
    after: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default=[], description="start once these tasks succeeded")
    unique: str | None = None
    mutex: str | None = None
    tenant: str | None = Field(default=None, description="default 'default'; a tenant token's own")
    timeout: float | None = Field(default=None, description="seconds it may run")
    retries: int = 0
    retry_delay: float = 1.0
    backoff: Literal["fixed", "exponential"] = "exponential"
    retry_on: list[str] | None = None
    on_finish: list[str] | None = Field(default=None, description="a command run when it ends"
                                        " (its finish hook); [] for none at all")
    keep: bool = Field(default=False, description="never pruned by retention")
    limits: LimitsIn | None = Field(default=None, description="its queue's apply where unset")
    rate_limit: str | None = Field(default=None, description="KEY=N/PERIOD (api=10/1m): at"
                                   " most N tasks with KEY start per sliding PERIOD")
    output_head: str | int | None = Field(default=None, description="bytes of each stream"
                                          " kept from its start: 1M, 512K, or bytes (null:"
                                          " the queue's, else the server's)")
    output_tail: str | int | None = Field(default=None, description="... from its end; 0"
                                          " keeps the head only")


#: Tasks a batch submit takes at most (Sidekiq advises 1,000 a push_bulk call too): a
#: batch is one transaction, holding the store's write lock for about 50 ms on SQLite.
MAX_BATCH = 1000


class BatchBody(Body):
    tasks: list[SubmitBody] = Field(min_length=1, max_length=MAX_BATCH, description="submit"
                                    " bodies, written all or none, in this order")


class KillBody(Body):
    signal: str | int = "TERM"
    graceful: bool = Field(default=False, description="ask a function task to stop by itself")


class SignalBody(Body):
    name: str
    data: Any = None


class BulkFilter(Body):
    status: list[str] = []
    queue: str | None = None
    tenant: str | None = None
    name: str | None = None
    meta: dict[str, str] = Field(default={}, description="metadata KEY (dotted path) -> value")
    q: str | None = Field(default=None, description="free text")


class BulkBody(Body):
    action: Literal["kill", "pause", "resume", "restart", "delete"]
    filter: BulkFilter = BulkFilter()
    dry_run: bool = False
    snapshot: str | None = Field(default=None, description="from a dry run: act on exactly that set")


class LimitsIn(Body):
    """Resource limits (a task stopped by one ends failed, reason limit); null or
    absent: no limit of that kind."""

    memory: str | int | None = Field(default=None, description="512M, 1.5G, or bytes")
    cpu: str | float | None = Field(default=None, description="CPU time: 60s, 2m, or seconds")
    files: int | None = Field(default=None, description="open files")
    procs: int | None = Field(default=None, description="processes of its user")


class QueuePatch(Body):
    parallel: int | None = Field(default=None, description="null: no limit")
    paused: bool | None = None
    limits: LimitsIn | None = Field(default=None, description="the kinds given are set"
                                    " (null: cleared); a task's own override them")
    rate: str | None = Field(default=None, description="N/PERIOD (100/1m): at most N of its"
                             " tasks start per sliding PERIOD; null or '': no rate")
    on_finish: list[str] | None = Field(default=None, description="its finish hook command;"
                                        " []: none, not even the server's; null: the server's")
    on_finish_url: str | None = Field(default=None, description="its webhook URL; '': none;"
                                      " null: the server's")
    retain: str | float | None = Field(default=None, description="prune its tasks finished"
                                       " longer ago (30d, or seconds; 0: never; null: the"
                                       " server's retain)")
    retain_count: int | None = Field(default=None, description="keep its newest N finished"
                                     " tasks (0: no count limit; null: the server's)")
    output_head: str | int | None = Field(default=None, description="bytes of each stream its"
                                          " tasks keep from the start: 1M, 64K or bytes"
                                          " (null: the server's)")
    output_tail: str | int | None = Field(default=None, description="... and from the end (0:"
                                          " the head only)")


class ScheduleBody(Body):
    name: str
    expr: str
    tz: str | None = None
    catch_up: Literal["none", "one", "all"] = "one"
    max_lag: float | None = None
    paused: bool = False
    task: SubmitBody


class SchedulePatch(Body):
    paused: bool


class TenantBody(Body):
    name: str
    enabled: bool = True
    run_as: str | None = None
    parallel: int | None = None


class TenantPatch(Body):
    enabled: bool | None = None
    run_as: str | None = None
    parallel: int | None = None


class TokenBody(Body):
    role: Literal["viewer", "operator", "admin"]
    tenant: str | None = None
    name: str | None = None
    expires: str | None = Field(default=None, description="lifetime: 30d, 12h, 3600...")


# -- responses --------------------------------------------------------------------------


class ProgressOut(Out):
    done: float | None
    total: float | None
    message: str | None


class TaskOut(Out):
    id: int
    kind: str  #: command | function | tracked
    name: str | None
    queue: str
    status: str
    reason: str | None
    exit_code: int | None
    signal: int | None
    error: str | None
    argv: list[str]
    env_keys: list[str]
    cwd: str | None
    meta: dict[str, Any]
    stdin_open: bool
    timeout: float | None
    priority: int
    run_at: str | None
    retries: int
    retried: int
    unique: str | None
    mutex: str | None
    tenant: str
    schedule: str | None
    fire_at: str | None
    function: str | None
    kwargs: dict[str, Any] | None
    result: Any
    config: dict[str, Any]
    steps: Any
    progress: ProgressOut
    attempt: int
    pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    fds: list[int] = Field(default=[], description="descriptors past 2 it was given data on")
    on_finish: list[str] | None = Field(default=None, description="its own finish hook")
    hook_for: dict[str, int] | None = Field(default=None, description="a hook run: the task"
                                            " and attempt it reports on")
    keep: bool = Field(default=False, description="never pruned by retention")
    limits: dict[str, int] = Field(default={}, description="its own resource limits (memory"
                                   " in bytes, cpu in seconds, files, procs)")
    rate_limit: str | None = Field(default=None, description="its own rate limit, KEY=N/PERIOD")
    output_head: int | None = Field(default=None, description="bytes of each stream kept from"
                                    " its start (null: the queue's, else the server's)")
    output_tail: int | None = Field(default=None, description="... and from its end")


class AttemptOut(Out):
    attempt: int
    owner: str | None
    pid: int | None
    status: str | None
    reason: str | None
    exit_code: int | None
    signal: int | None
    error: str | None
    started_at: str | None
    finished_at: str | None
    report: str | None = Field(default=None, description="ok | error: its own last report")
    report_message: str | None = None
    usage: dict[str, Any] | None = Field(default=None, description="cpu_user, cpu_system"
                                         " (seconds), max_rss_kib: what it used")
    output_head: int | None = Field(default=None, description="the output bounds it ran with"
                                    " (bytes kept of each stream's start and end)")
    output_tail: int | None = None
    status_file: str | None = None  #: the status file its server writes (None: none)


class EventOut(Out):
    at: str
    from_: str | None = Field(alias="from")
    to: str
    by: str
    attempt: int
    detail: str | None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WhyOut(Out):
    code: str
    text: str


class TaskDetail(TaskOut):
    attempts: list[AttemptOut]
    events: list[EventOut]
    hooks: list[dict[str, Any]] = Field(default=[], description="its finish hook runs: id,"
                                        " attempt reported on, status, reason, exit_code")
    waiting: list[WhyOut] = Field(description="why it is not running (queued/scheduled)")
    status_file: str | None = Field(default=None, description="its status file on the"
                                    " servers' host (the one its latest attempt's server"
                                    " writes; before a first start, where it will be);"
                                    " null: no status files")


class TaskWaited(TaskOut):
    timed_out: bool


class BatchOut(Out):
    tasks: list[TaskOut] = Field(description="the tasks made, in the order of the request")


class TaskPage(Out):
    items: list[TaskOut]
    next_cursor: str | None
    partial: bool = Field(description="always false since metadata and text have indexes")


class Counts(Out):
    counts: dict[str, int]
    total: int
    partial: bool = Field(description="more tasks match: a filter counted task by task"
                                      " (name, kind, times, metadata, text) stops at its"
                                      " newest 10,000 matches, and these are their counts")


class BulkOut(Out):
    action: str
    dry_run: bool
    count: int
    ids: list[int] = Field(description="the first 50")
    snapshot: str | None
    done: list[int] = []
    failed: dict[str, str] = Field(default={}, description="task id -> why it was not touched")


class QueueOut(Out):
    name: str
    paused: bool
    parallel: int | None
    on_finish: list[str] | None = Field(default=None, description="its own finish hook")
    on_finish_url: str | None = Field(default=None, description="its own webhook ('': none)")
    retain: float | None = Field(default=None, description="its own retention age, seconds")
    retain_count: int | None = Field(default=None, description="its own retention count")
    output_head: int | None = Field(default=None, description="bytes of each stream its tasks"
                                    " keep from the start (null: the server's)")
    output_tail: int | None = Field(default=None, description="... and from the end")
    status_dir: str | None = Field(default=None, description="its own status directory"
                                   " (null: the server's status_dir)")
    limits: dict[str, int] = {}
    rate: str | None = Field(default=None, description="its rate, N/PERIOD")
    tasks: dict[str, int]


class TenantOut(Out):
    name: str
    enabled: bool
    run_as: str | None
    parallel: int | None
    created_at: str | None
    tasks: dict[str, int] = {}


class ScheduleOut(Out):
    name: str
    expr: str
    tz: str
    tenant: str
    catch_up: str
    max_lag: float | None
    paused: bool
    next_at: str | None
    last_tick: str | None
    fired: int
    created_at: str | None
    task: dict[str, Any]
    next_five: list[str] = []
    last_task: dict[str, Any] | None = None


class ServerOut(Out):
    id: str
    host: str
    pid: int
    started_at: str | None
    heartbeat_at: str | None
    heartbeat_age: float
    slots: int
    running: int
    alive: bool
    fenced: bool


class TokenOut(Out):
    id: int
    name: str
    role: str
    tenant: str | None
    created_at: str | None
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    used_at: str | None
    login: bool


class TokenCreated(Out):
    id: int
    name: str
    role: str
    tenant: str | None
    token: str
    expires_at: str | None


class SignalOut(Out):
    id: int
    task_id: int
    name: str
    data: Any
    sent_at: str | None


class ConfigOut(Out):
    config: dict[str, Any]


class Problem(Out):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
