"""User verbs, one function each, shared by the CLI, the Python API and (later) HTTP.

They only talk to the store: a control on a running task is a *request* the
owning server applies; nothing here signals a process.
"""

from __future__ import annotations

import functools
import os
import signal as _signal
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from . import lifecycle, outputbounds, validate
from .errors import (
    InvalidInput,
    NotFound,
    StaleAttempt,
    TaskyardError,
    TransitionError,
    UserError,
)
from .lifecycle import Status, Verb
from .model import JSON, OutputRead, Request, Schedule, Task, TaskSpec
from .queuesettings import (
    QueueChanges as QueueChanges,
)
from .queuesettings import (
    set_queue_hooks as set_queue_hooks,
)
from .queuesettings import (
    set_queue_limits as set_queue_limits,
)
from .queuesettings import (
    set_queue_output as set_queue_output,
)
from .queuesettings import (
    set_queue_parallel as set_queue_parallel,
)
from .queuesettings import (
    set_queue_rate as set_queue_rate,
)
from .queuesettings import (
    set_queue_retention as set_queue_retention,
)
from .queuesettings import (
    set_queue_status_dir as set_queue_status_dir,
)
from .store.base import ClientStore as Store

T = TypeVar("T")

REQUEST_TIMEOUT = 10.0
_JOB_CONTROL = frozenset({_signal.SIGSTOP, _signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU,
                          _signal.SIGCONT})


def actor() -> str:
    """Who is acting, for event rows: the user name of this process."""
    return _user_name(os.getuid())


@functools.lru_cache(maxsize=4)
def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid:{uid}"


def wait_for(predicate: Callable[[], T | None], timeout: float | None,
             interval: float = 0.01, max_interval: float = 0.25) -> T | None:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if deadline is not None and time.monotonic() >= deadline:
            return None
        pause = interval if deadline is None else min(interval, max(0.0, deadline - time.monotonic()))
        time.sleep(pause)
        interval = min(interval * 1.5, max_interval)


def submit(store: Store, spec: TaskSpec, *, by: str | None = None,
           max_tail: int | None = None) -> Task:
    """Submit one task (``max_tail``: the largest output tail the submitter's settings
    allow)."""
    task = store.submit(check(spec, max_tail), by=by or actor())
    store.wake(b"w" if task.status is Status.QUEUED else b"d")
    return task


def check(spec: TaskSpec, max_tail: int | None = None) -> TaskSpec:
    """``spec`` checked as every submit checks it."""
    if spec.output_head is not None or spec.output_tail is not None:
        outputbounds.check(spec.output_head, spec.output_tail, max_tail)
    return validate.check_spec(spec)


#: specs a bulk submit writes per transaction (each holds the store's write lock for
#: about a tenth of a second on SQLite, so servers keep claiming in between)
CHUNK = 2000


def submit_many(store: Store, specs: Sequence[TaskSpec], *, by: str | None = None,
                max_tail: int | None = None, chunk: int = CHUNK,
                label: Callable[[int], str] = "spec {}".format) -> list[Task]:
    """Submit many tasks: every spec is checked before any is written (a bad one is an
    error naming its index, and nothing is written), then each ``chunk`` of them is one
    transaction. Should a later chunk fail in the store (a tenant removed meanwhile),
    the error says how many were written before it. ``label`` names a spec by its
    index in errors (the CLI: its line)."""
    checked = []
    for index, spec in enumerate(specs):
        try:
            checked.append(check(spec, max_tail))
        except UserError as exc:
            raise type(exc)(f"{label(index)}: {exc}",
                            field=f"{index}.{exc.field or 'spec'}") from None
    if len(checked) > max(1, chunk):  # all or none: what a later chunk names exists
        try:
            store.check_references(checked)
        except TaskyardError as exc:
            raise _named(exc, 0, label) from None
    tasks: list[Task] = []
    who = by or actor()
    for start in range(0, len(checked), max(1, chunk)):
        try:
            tasks += store.submit_many(checked[start:start + max(1, chunk)], by=who)
        except TaskyardError as exc:
            exc = _named(exc, start, label)
            if not tasks:
                raise exc from None
            raise type(exc)(f"{exc} ({label(0)} to {label(start - 1)} were submitted: tasks"
                            f" {tasks[0].id}-{tasks[-1].id}; none from {label(start)} on)"
                            ) from None
    if tasks:
        store.wake(b"w" if any(t.status is Status.QUEUED for t in tasks) else b"d")
    return tasks


def _named(exc: TaskyardError, start: int, label: Callable[[int], str]) -> TaskyardError:
    """A store's error about the spec at index ``N`` of a chunk (its field ``N.name``)
    as one naming that spec."""
    field = getattr(exc, "field", None) or ""
    index, dot, rest = field.partition(".")
    if not (dot and index.isdigit() and isinstance(exc, UserError)):
        return exc
    whole = start + int(index)
    return type(exc)(f"{label(whole)}: {exc}", field=f"{whole}.{rest}")


def submit_once(store: Store, spec: TaskSpec, *, by: str, token_id: int,
                key: str, max_tail: int | None = None) -> tuple[Task, bool]:
    """Submit unless this token submitted with ``key`` in the last 24 hours (an HTTP
    Idempotency-Key): then that task. Returns the task and whether it is new."""
    task, new = store.submit_once(check(spec, max_tail), by=by, token_id=token_id, key=key)
    if new:
        store.wake(b"w" if task.status is Status.QUEUED else b"d")
    return task, new


def _apply(store: Store, task_id: int, kind: str, payload: JSON, by: str | None,
           timeout: float | None) -> Request:
    """Write a control request and wait until the owning server applied it."""
    request = store.add_request(task_id, kind, payload, by=by or actor())
    store.wake(b"r")
    if timeout == 0:
        return request
    done = wait_for(lambda: _settled(store, request), timeout)
    if done is None:
        # Not a user error (exit 1, not 2): the request stands, and a server applies it
        # when it gets to it.
        raise TaskyardError(f"request {request.id} ({kind} task {task_id}) is recorded but no"
                            f" server applied it within {timeout:g}s; it will be applied when"
                            " one does (is the server running?)")
    if done.state == "rejected":
        action = {"stdin": "send to", "eof": "close the stdin of"}.get(kind, kind)
        raise TransitionError(f"cannot {action} task {task_id}: {done.result}")
    return done


def _settled(store: Store, request: Request) -> Request | None:
    """The request once answered; an attempt that ended meanwhile answers it too."""
    current = store.get_request(request.id)
    if current.state != "pending":
        return current
    task = store.get(request.task_id)
    if task.attempt != request.epoch or not task.status.active:
        # The server answers a request before the attempt it touched can end, so the
        # answer may have come between our two reads (a kill applied, the task stopped
        # by it): read it again before calling the request too late.
        current = store.get_request(request.id)
        if current.state != "pending":
            return current
        return current._replace(state="rejected", result=f"the task is {task.status}")
    return None


def kill(store: Store, task_id: int, sig: str | int = "TERM", *, by: str | None = None,
         timeout: float | None = REQUEST_TIMEOUT) -> Task:
    """Signal the task's process group (TERM, then KILL after the grace period by
    default); a waiting task is stopped before it starts."""
    number = validate.parse_signal(sig)
    if number in _JOB_CONTROL:  # the server continues a killed group so that it ends
        raise InvalidInput(f"kill does not send {_signal.Signals(number).name}: use taskyard"
                           " pause / resume", field="signal")
    task = store.get(task_id)
    if task.status in lifecycle.sources(Verb.CANCEL):
        cancelled = store.cancel(task_id, by=by or actor())
        if cancelled is not None:
            return cancelled
        task = store.get(task_id)
    if not task.status.active:
        raise TransitionError(f"cannot kill task {task_id}: it is {task.status}")
    if task.tracked:
        from . import tracked

        tracked.kill(store, task_id, number, by=by or actor(), timeout=timeout)
        return store.get(task_id)
    escalate = number == _signal.SIGTERM  # however it was spelled: TERM, sigterm, 15, 015
    _apply(store, task_id, "kill", {"signal": number, "escalate": escalate}, by, timeout)
    return store.get(task_id)


def pause(store: Store, task_id: int, *, by: str | None = None,
          timeout: float | None = REQUEST_TIMEOUT) -> Task:
    lifecycle.require(Verb.PAUSE, _started(store, task_id, "pause").status, task_id=task_id)
    _apply(store, task_id, "pause", None, by, timeout)
    return store.get(task_id)


def resume(store: Store, task_id: int, *, by: str | None = None,
           timeout: float | None = REQUEST_TIMEOUT) -> Task:
    lifecycle.require(Verb.RESUME, _started(store, task_id, "resume").status, task_id=task_id)
    _apply(store, task_id, "resume", None, by, timeout)
    return store.get(task_id)


def send(store: Store, task_id: int, data: bytes, *, eof: bool = False, by: str | None = None,
         timeout: float | None = REQUEST_TIMEOUT) -> None:
    """Write ``data`` (then, with ``eof``, close) to the stdin of a ``--stdin-open`` task."""
    task = store.get(task_id)
    if not task.stdin_open:
        raise InvalidInput(f"task {task_id} was not submitted with --stdin-open", field="stdin")
    if not task.status.active:
        raise TransitionError(f"cannot send to task {task_id}: it is {task.status}")
    if len(data) > validate.MAX_STDIN_BYTES:
        raise InvalidInput("data is over 64 MiB; send it in parts", field="data")
    if data:
        _apply(store, task_id, "stdin", {"data": data.hex()}, by, timeout)
    if eof:
        _apply(store, task_id, "eof", None, by, timeout)


def _started(store: Store, task_id: int, verb: str) -> Task:
    """The task, if taskyard started it: a tracked task's process is not ours to steer."""
    task = store.get(task_id)
    if task.tracked:
        raise TransitionError(f"cannot {verb} task {task_id}: it is tracked (taskyard did"
                              " not start it)")
    return task


def restart(store: Store, task_id: int, *, by: str | None = None) -> Task:
    _started(store, task_id, "restart")
    task = store.restart(task_id, by=by or actor())
    store.wake()
    return task


def remove(store: Store, task_id: int, *, force: bool = False, by: str | None = None,
           timeout: float = 30.0) -> None:
    task = store.get(task_id)
    if force and not task.terminal:
        waiting = store.waiting_on(task_id)  # refused below anyway: then kill nothing
        if waiting is not None:
            raise TransitionError(f"cannot rm task {task_id}: task {waiting} waits for it"
                                  " (--after)")
        kill(store, task_id, "KILL", by=by, timeout=timeout)
        if wait(store, task_id, timeout) is None:
            raise UserError(f"task {task_id} did not end within {timeout:g}s; not removed")
    store.delete(task_id)


def wait(store: Store, task_id: int, timeout: float | None = None) -> Task | None:
    """The task once it is terminal, or None if ``timeout`` passed first."""
    store.get(task_id)

    def ended() -> Task | None:
        task = store.get(task_id)
        return task if task.terminal else None

    return wait_for(ended, timeout, interval=0.005, max_interval=0.2)


def set_meta(store: Store, task_id: int, patch: dict[str, JSON]) -> Task:
    return store.patch_meta(task_id, patch, validate.MAX_META_BYTES)


def report_progress(store: Store, task_id: int, epoch: int, done: float,
                    total: float | None, message: str | None) -> None:
    """Progress of a running attempt; only that attempt may write it (fenced by epoch)."""
    validate.check_progress(done, total, message)
    try:
        store.set_progress(task_id, epoch, done, total, message)
    except StaleAttempt as exc:
        raise TransitionError(f"cannot report progress: {exc}") from None


def report(store: Store, task_id: int, epoch: int, ok: bool, message: str | None) -> None:
    """A running attempt's own verdict (``taskyard report ok|error MESSAGE``)."""
    if message is not None:
        validate.check_unicode(message, "message")
        if len(message) > validate.MAX_MESSAGE:
            raise InvalidInput(f"the message is over {validate.MAX_MESSAGE} characters",
                               field="message")
    try:
        store.report(task_id, epoch, ok, message)
    except StaleAttempt as exc:
        raise TransitionError(f"cannot report: {exc}") from None


def pause_queue(store: Store, name: str) -> None:
    """Claim nothing more from queue ``name``; its running tasks go on."""
    store.set_queue_paused(name, True)


def resume_queue(store: Store, name: str) -> None:
    store.set_queue_paused(name, False)
    store.wake()


def add_tenant(store: Store, name: str, *, enabled: bool = True, run_as: str | None = None,
               parallel: int | None = None) -> dict[str, JSON]:
    validate.required_name(name, "tenant")
    return store.add_tenant(name, enabled=enabled, run_as=validate.check_user(run_as),
                            parallel=validate.check_parallel(parallel))


def enable_tenant(store: Store, name: str, *, run_as: str | None = None) -> dict[str, JSON]:
    """Serve the tenant's tasks and schedules (as ``run_as`` when given)."""
    if run_as is not None:
        tenant = store.update_tenant(name, enabled=True, run_as=validate.check_user(run_as))
    else:
        tenant = store.update_tenant(name, enabled=True)
    store.wake(b"wc")
    return tenant


def disable_tenant(store: Store, name: str) -> dict[str, JSON]:
    """Leave the tenant's queued tasks and schedules alone; running ones go on."""
    return store.update_tenant(name, enabled=False)


def set_tenant_parallel(store: Store, name: str, parallel: int | None) -> dict[str, JSON]:
    tenant = store.update_tenant(name, parallel=validate.check_parallel(parallel))
    store.wake()
    return tenant


def read_output(store: Store, task_id: int, stream: str = "stdout", offset: int = 0,
                limit: int | None = None, attempt: int | None = None) -> OutputRead:
    if stream not in ("stdout", "stderr"):
        raise InvalidInput("stream must be stdout or stderr", field="stream")
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidInput("offset and limit must be >= 0", field="offset")
    if attempt is not None and not 1 <= attempt <= store.get(task_id).attempt:
        raise NotFound(f"task {task_id} has no attempt {attempt}", field="attempt")
    return store.read_output(task_id, stream, offset, limit, attempt)



# -- cron ------------------------------------------------------------------------------


def local_zone() -> str:
    """The IANA name of this machine's zone (``TZ``, else /etc/localtime), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and not tz.startswith("/"):
        return tz
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target[target.index(marker) + len(marker):] if marker in target else "UTC"


def add_schedule(store: Store, name: str, expr: str, spec: TaskSpec, *, tz: str | None = None,
                 catch_up: str = "one", max_lag: float | None = None,
                 paused: bool = False) -> Schedule:
    """A cron schedule firing ``spec`` at each tick of ``expr`` in zone ``tz`` (default:
    this machine's zone, resolved now so every server reads the same)."""
    from . import cron

    validate.required_name(name, "name")
    if catch_up not in {c.value for c in cron.CatchUp}:
        raise InvalidInput("catch-up must be none, one or all", field="catch_up")
    if max_lag is not None and not 0 <= max_lag < float("inf"):
        raise InvalidInput("max-lag must be seconds >= 0", field="max_lag")
    spec = validate.check_spec(spec)
    if spec.stdin is not None or spec.stdin_open or spec.after or spec.run_at is not None:
        raise InvalidInput("a schedule's task cannot have stdin, --after or a start time",
                           field="spec")
    sched = Schedule(name=name, expr=cron.check_expr(expr),
                     tz=cron.check_zone(tz if tz is not None else local_zone()),
                     tenant=spec.tenant, catch_up=catch_up, max_lag=max_lag, spec=spec,
                     paused=paused, last_tick=0.0, next_at=None, fired=0, created_at=time.time())
    added = store.add_schedule(sched)
    store.wake(b"c")
    return added


def pause_schedule(store: Store, name: str, paused: bool = True) -> Schedule:
    sched = store.set_schedule_paused(name, paused)
    store.wake(b"c")
    return sched


def run_schedule(store: Store, name: str, *, by: str | None = None) -> Task:
    """Fire the schedule's task once, now (its regular ticks are not affected)."""
    task = store.run_schedule(name, by=by or actor())
    store.wake()
    return task


# -- function tasks: what operators send to a running task ----------------------------


def result(store: Store, task_id: int) -> JSON:
    """A function task's return value; an error if it has none (yet)."""
    task = store.get(task_id)
    if task.function is None:
        raise InvalidInput(f"task {task_id} is a command, not a function: it has no result",
                           field="id")
    if task.status.value != "succeeded":
        raise TransitionError(f"task {task_id} has no result: it is {task.status}"
                              + (f" ({task.error})" if task.error else ""))
    return task.result


def send_signal(store: Store, task_id: int, name: str, data: JSON = None, *,
                by: str | None = None) -> dict[str, JSON]:
    """A custom signal the task reads with ``ctx.signals()``."""
    validate.required_name(name, "name")
    text = validate.check_json(data, "data") if data is not None else None
    _function_only(store, task_id, "read custom signals (ctx.signals())")
    return store.send_signal(task_id, name, text, by=by or actor())


def _function_only(store: Store, task_id: int, what: str) -> None:
    """Only a function task can poll what ``what`` sends: refuse a command task, rather
    than report success for something it will never see."""
    task = store.get(task_id)
    if task.function is None and not task.tracked:
        raise TransitionError(f"task {task_id} is a command: only function tasks (and"
                              f" tracked ones) {what}")


def set_config(store: Store, task_id: int, patch: dict[str, JSON]) -> Task:
    """Merge ``patch`` into the task's live config (``None`` deletes a key)."""
    if not isinstance(patch, dict):
        raise InvalidInput("config must be a JSON object", field="config")
    validate.check_json(patch, "config")
    return store.set_config(task_id, patch, validate.MAX_META_BYTES)


def ask_stop(store: Store, task_id: int) -> Task:
    """Ask a running task to stop by itself (``ctx.should_stop()``)."""
    _function_only(store, task_id, "can be asked to stop by themselves (use kill)")
    return store.ask_stop(task_id)
