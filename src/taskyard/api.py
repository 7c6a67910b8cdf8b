"""The typed Python API: the same verbs as the CLI.

>>> from taskyard import Yard
>>> y = Yard(home="/tmp/yard")
>>> t = y.submit(["echo", "hi"], queue="default", meta={"who": "docs"})
>>> y.wait(t.id, timeout=10).status          # doctest: +SKIP
<Status.SUCCEEDED: 'succeeded'>
>>> y.logs(t.id).data                         # doctest: +SKIP
b'hi\\n'
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import access, ops, search
from . import validate as v
from .config import Settings, load
from .errors import InvalidInput
from .limits import NONE, Limits
from .limits import parse as parse_limits
from .logs import client_logger, log_event, quote
from .messages import MessagesRead
from .model import JSON, Attempt, Event, OutputRead, Schedule, Task, TaskSpec
from .outputbounds import parse_optional as _size
from .rates import Rate, RateLimit, parse_rate_limit
from .search import TaskList, TimeArg
from .store import open_store
from .store.access import Token

#: seconds; a change that took longer (the store's lock held elsewhere) is a warning
SLOW_CALL = 1.0
if TYPE_CHECKING:
    from .stats import Stats
    from .tracked import Tracked


class Yard:
    """A client of one taskyard home. Cheap to create; safe to share between threads
    (their calls take turns on its one connection). What it changes is logged to
    ``logger`` (default ``taskyard.client``) at DEBUG, and a change that waited long
    for the store at WARNING."""

    def __init__(self, home: str | Path | None = None, *, store: str | None = None,
                 settings: Settings | None = None, logger: logging.Logger | None = None
                 ) -> None:
        self.settings = settings or load(home, store=store)
        self.log = client_logger(logger)
        self._store = open_store(self.settings.store_location,
                                 synchronous=self.settings.synchronous)

    @classmethod
    def memory(cls, *, logger: logging.Logger | None = None) -> Yard:
        """A Yard on a new, empty store in memory (for tests: no file is made); the
        same as ``Yard(store=":memory:")``. Its data goes when it is closed."""
        return cls(store=":memory:", logger=logger)

    @classmethod
    def inline(cls, home: str | Path | None = None, *, store: str | None = None,
               logger: logging.Logger | None = None) -> Yard:
        """A Yard that runs what is submitted at once, in this process, as a server
        would (for tests; see taskyard.testing). On a memory store unless ``store``
        or ``home`` names one."""
        from .inline import InlineYard

        return InlineYard(home, store=store if store or home else ":memory:", logger=logger)

    def _changed(self, verb: str, task: Task | int, started: float) -> None:
        """The line of one change this client made."""
        seconds = time.monotonic() - started
        task_id = task.id if isinstance(task, Task) else task
        name = task.name if isinstance(task, Task) else None
        slow = seconds >= SLOW_CALL
        log_event(self.log, f"client.{verb}", f"{verb} task {task_id}"
                  + (f" name={quote(name)}" if name is not None else "")
                  + (f": took {seconds:.1f}s (the store was busy)" if slow else ""),
                  level=logging.WARNING if slow else logging.DEBUG, verb=verb, task=task_id,
                  name=name, seconds=round(seconds, 6))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Yard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tasks ---------------------------------------------------------------

    def submit(self, argv: Sequence[str], *, name: str | None = None, queue: str = "default",
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               meta: Mapping[str, JSON] | None = None, stdin: bytes | None = None,
               stdin_open: bool = False, timeout: float | None = None, priority: int = 0,
               run_at: float | None = None, delay: float | None = None, retries: int = 0,
               retry_delay: float = 1.0, backoff: str = "exponential",
               retry_on: Sequence[str] = ("exit", "signal", "timeout", "exception"),
               after: Sequence[int] = (), unique: str | None = None,
               mutex: str | None = None, tenant: str = "default",
               fds: Mapping[int, bytes] | None = None,
               on_finish: Sequence[str] | None = None, keep: bool = False,
               limits: Mapping[str, int | float | str] | None = None,
               rate_limit: str | None = None,
               output_head: int | str | None = None,
               output_tail: int | str | None = None) -> Task:
        """Submit a command (no shell). Durable when this returns, server or not.

        ``run_at`` (unix time) or ``delay`` (seconds from now) keep it ``scheduled``
        until then; higher ``priority`` runs first within its queue. A failed attempt
        whose reason is in ``retry_on`` is retried up to ``retries`` times, after
        ``retry_delay`` seconds (doubling per retry with ``exponential`` backoff).
        With ``after``, it starts only once those tasks succeeded, and fails (reason
        ``dependency``) if one of them fails or is stopped. With ``unique``, while a
        task with that key is scheduled, queued, running or paused, that task is
        returned instead of a new one. With ``mutex``, at most one task with that
        key runs at a time. It runs only while its ``tenant`` is enabled. ``fds`` gives
        it data to read on descriptors 3-255 (``{3: b"params"}``). ``on_finish`` is
        the command run when it ends (its finish hook; ``[]``: none, not even the
        queue's or the server's). ``keep``: never pruned by retention. ``limits`` are what
        it may use: ``{"memory": "512M", "cpu": "60s", "files": 64, "procs": 100}``
        (memory also in bytes, cpu in seconds); its queue's apply where it sets none.
        ``rate_limit`` (``"api=10/1m"``): at most N tasks with that key start per sliding
        period, across all servers on the store (its queue's rate applies as well).
        Without ``cwd`` it runs in its server's directory (the ``cwd`` setting), not the
        caller's. ``output_head``/``output_tail`` (bytes, or ``"1M"``) are how much of
        each stream it keeps from the start and the end (default: its queue's, else the
        server's 1 MiB and 32 MiB; a tail of 0 keeps the head only).
        """
        run_at = _start_time(run_at, delay)
        spec = TaskSpec(argv=v.strings(argv, "argv"), name=name, queue=queue,
                        env=v.mapping(env, "env"), cwd=_cwd(cwd), meta=v.mapping(meta, "meta"),
                        stdin=stdin, stdin_open=stdin_open, timeout=timeout,
                        priority=priority, run_at=run_at, retries=retries,
                        retry_delay=retry_delay, backoff=backoff,
                        retry_on=v.strings(retry_on, "retry_on"), after=_ids(after),
                        unique=unique, mutex=mutex, tenant=tenant,
                        fds=v.check_fds(dict(fds) if isinstance(fds, Mapping) else
                                        ({} if fds is None else fds)),
                        on_finish=None if on_finish is None else v.check_hook(on_finish),
                        keep=bool(keep), limits=_limits(limits),
                        rate_limit=_rate_limit(rate_limit),
                        output_head=_size(output_head, "output_head"),
                        output_tail=_size(output_tail, "output_tail"))
        return self._submit(spec)

    def _submit(self, spec: TaskSpec) -> Task:
        started = time.monotonic()
        task = ops.submit(self._store, spec, max_tail=self.settings.max_tail_bytes)
        self._changed("submit", task, started)
        return task

    def submit_many(self, specs: Iterable[TaskSpec | Mapping[str, JSON]], *,
                    chunk: int = ops.CHUNK) -> list[Task]:
        """Submit many tasks at once: each a :class:`TaskSpec` or a mapping with the
        fields of the HTTP API's submit body (``{"argv": [...], "queue": ...}``). All
        are checked before any is written (a bad one raises an error naming its index,
        and nothing is written); then every ``chunk`` of them is one transaction."""
        from . import specjson

        given = [spec if isinstance(spec, TaskSpec) else specjson.from_mapping(spec)
                 for spec in specs]
        started = time.monotonic()
        tasks = ops.submit_many(self._store, given, max_tail=self.settings.max_tail_bytes,
                                chunk=v.whole(chunk, "chunk"))
        log_event(self.log, "client.submit_many", f"submit_many: {len(tasks)} tasks"
                  f" in {time.monotonic() - started:.3f}s", level=logging.DEBUG,
                  verb="submit_many", count=len(tasks))
        return tasks

    def submit_function(self, function: str, kwargs: Mapping[str, JSON] | None = None, *,
                        name: str | None = None, queue: str = "default",
                        meta: Mapping[str, JSON] | None = None, timeout: float | None = None,
                        priority: int = 0, run_at: float | None = None,
                        delay: float | None = None, retries: int = 0,
                        retry_delay: float = 1.0, backoff: str = "exponential",
                        retry_on: Sequence[str] = ("exit", "signal", "timeout", "exception"),
                        after: Sequence[int] = (), unique: str | None = None,
                        mutex: str | None = None, tenant: str = "default",
                        on_finish: Sequence[str] | None = None, keep: bool = False,
                        limits: Mapping[str, int | float | str] | None = None,
                        rate_limit: str | None = None,
                        output_head: int | str | None = None,
                        output_tail: int | str | None = None) -> Task:
        """Submit a call of the registered function ``function`` with JSON ``kwargs``;
        the same scheduling options, ``rate_limit``, ``limits`` (applied to the worker
        that runs it, which then leaves) and output bounds as :meth:`submit`."""
        run_at = _start_time(run_at, delay)
        if not isinstance(function, str):
            raise InvalidInput("function must be the name a function was registered with",
                               field="function")
        spec = TaskSpec(argv=(), function=function, kwargs=v.mapping(kwargs, "kwargs"),
                        name=name, queue=queue, meta=v.mapping(meta, "meta"), timeout=timeout,
                        priority=priority, run_at=run_at, retries=retries,
                        retry_delay=retry_delay, backoff=backoff,
                        retry_on=v.strings(retry_on, "retry_on"), after=_ids(after),
                        unique=unique, mutex=mutex, tenant=tenant,
                        on_finish=None if on_finish is None else v.check_hook(on_finish),
                        keep=bool(keep), limits=_limits(limits),
                        rate_limit=_rate_limit(rate_limit),
                        output_head=_size(output_head, "output_head"),
                        output_tail=_size(output_tail, "output_tail"))
        return self._submit(spec)

    def track(self, *, name: str | None = None, meta: Mapping[str, JSON] | None = None,
              queue: str = "default", tenant: str = "default", killable: bool = False
              ) -> Tracked:
        """Record work this process does (not started by taskyard) as a running task of
        kind ``tracked``, owned by this process: see :class:`taskyard.tracked.Tracked`."""
        from .tracked import Tracked, identify, track

        started, by = time.monotonic(), ops.actor()
        task = track(self._store, name=name, meta=meta, queue=queue, tenant=tenant,
                     killable=killable, by=by)
        self._changed("track", task, started)
        return Tracked(self._store, task, identify(), by=by)

    def is_live(self, task_id: int) -> bool:
        """Whether the task runs and whoever runs it (its server; a tracked task's owner
        process) is alive."""
        from .tracked import is_live

        return is_live(self._store, v.task_id(task_id), self.settings.lease)

    def result(self, task_id: int) -> JSON:
        """A succeeded function task's return value."""
        return ops.result(self._store, v.task_id(task_id))

    def signal(self, task_id: int, name: str, data: JSON = None) -> dict[str, JSON]:
        """Send a custom signal the task reads with ``ctx.signals()``."""
        return ops.send_signal(self._store, v.task_id(task_id), name, data)

    def signals(self, task_id: int) -> list[dict[str, JSON]]:
        """Signals the task has not acknowledged yet."""
        return self._store.signals(v.task_id(task_id))

    def set_config(self, task_id: int, patch: Mapping[str, JSON]) -> Task:
        """Merge into the task's live config; it sees the change on its next read."""
        return ops.set_config(self._store, v.task_id(task_id), v.mapping(patch, "config", none_is_empty=False))

    def config(self, task_id: int) -> dict[str, JSON]:
        return self._store.get_config(v.task_id(task_id))[1]

    def stop_gracefully(self, task_id: int) -> Task:
        """Ask a running function task to stop by itself (``ctx.should_stop()``)."""
        return ops.ask_stop(self._store, v.task_id(task_id))

    def get(self, task_id: int) -> Task:
        return self._store.get(v.task_id(task_id))

    def attempts(self, task_id: int) -> list[Attempt]:
        return self._store.attempts(v.task_id(task_id))

    def events(self, task_id: int) -> list[Event]:
        return self._store.events(v.task_id(task_id))

    def logs(self, task_id: int, stream: str = "stdout", offset: int = 0,
             limit: int | None = None, attempt: int | None = None) -> OutputRead:
        """Bytes of one stream from ``offset`` (see :class:`OutputRead` for dropped ranges)."""
        return ops.read_output(self._store, v.task_id(task_id), stream, v.whole(offset, "offset"),
                               None if limit is None else v.whole(limit, "limit"),
                               None if attempt is None else v.whole(attempt, "attempt"))

    def messages(self, task_id: int, since: int = 0, *, attempt: int | None = None,
                 limit: int = 1000) -> MessagesRead:
        """Messages the task emitted (its latest attempt, or ``attempt``) numbered
        ``since`` and on: ``items``, ``next`` (to pass as ``since`` next time),
        ``dropped`` (by the bound) and ``finished``. Reading never consumes."""
        from . import messages

        return messages.read(self._store, v.task_id(task_id), since, limit, attempt)

    def wait(self, task_id: int, timeout: float | None = None) -> Task | None:
        """The task once it ended, or None when ``timeout`` passed first."""
        return ops.wait(self._store, v.task_id(task_id), v.timeout_arg(timeout))

    # -- controls -------------------------------------------------------------

    def kill(self, task_id: int, signal: str | int = "TERM") -> Task:
        started = time.monotonic()
        task = ops.kill(self._store, v.task_id(task_id), signal)
        self._changed("kill", task, started)
        return task

    def pause(self, task_id: int) -> Task:
        started = time.monotonic()
        task = ops.pause(self._store, v.task_id(task_id))
        self._changed("pause", task, started)
        return task

    def resume(self, task_id: int) -> Task:
        started = time.monotonic()
        task = ops.resume(self._store, v.task_id(task_id))
        self._changed("resume", task, started)
        return task

    def send(self, task_id: int, data: bytes, *, eof: bool = False) -> None:
        if not isinstance(data, bytes | bytearray):
            raise InvalidInput("send takes bytes (encode text first)", field="data")
        ops.send(self._store, v.task_id(task_id), bytes(data), eof=eof)

    def restart(self, task_id: int) -> Task:
        started = time.monotonic()
        task = ops.restart(self._store, v.task_id(task_id))
        self._changed("restart", task, started)
        return task

    def rm(self, task_id: int, *, force: bool = False) -> None:
        started = time.monotonic()
        ops.remove(self._store, v.task_id(task_id), force=force)
        self._changed("rm", task_id, started)

    def pause_queue(self, name: str) -> None:
        """Claim nothing more from queue ``name`` (its running tasks go on)."""
        ops.pause_queue(self._store, _name(name, "queue"))

    def resume_queue(self, name: str) -> None:
        ops.resume_queue(self._store, _name(name, "queue"))

    def set_queue_parallel(self, name: str, parallel: int | None) -> None:
        """Run at most ``parallel`` tasks of queue ``name`` at a time (None: no limit);
        with 1, one after another in submit order (within a priority)."""
        ops.set_queue_parallel(self._store, _name(name, "queue"), parallel)

    def set_queue_limits(self, name: str, limits: Mapping[str, int | float | str | None]
                         ) -> Limits:
        """Resource limits of the queue's tasks (each kind given is set, or cleared by
        None); a task's own override them. Returns the queue's limits."""
        if not isinstance(limits, Mapping):
            raise InvalidInput("limits must be a mapping", field="limits")
        return ops.set_queue_limits(self._store, name, dict(limits))

    def set_queue_rate(self, name: str, rate: str | None) -> Rate | None:
        """At most N starts of the queue's tasks per sliding period (``"100/1m"``), across
        all servers on the store; None takes the rate away. Returns the queue's rate."""
        return ops.set_queue_rate(self._store, name, rate)

    def queues(self) -> list[dict[str, JSON]]:
        """Every queue with its paused state, parallel limit and task count per status."""
        return self._store.queues()

    # -- cron ----------------------------------------------------------------------

    def add_schedule(self, name: str, expr: str, argv: Sequence[str], *, tz: str | None = None,
                     catch_up: str = "one", max_lag: float | None = None,
                     paused: bool = False, queue: str = "default",
                     env: Mapping[str, str] | None = None, cwd: str | None = None,
                     meta: Mapping[str, JSON] | None = None, timeout: float | None = None,
                     priority: int = 0, retries: int = 0, mutex: str | None = None,
                     unique: str | None = None, tenant: str = "default",
                     task_name: str | None = None) -> Schedule:
        """Submit ``argv`` at every tick of the cron expression ``expr`` in zone ``tz``
        (default: this machine's). Exactly one task per tick; ``catch_up`` (none, one,
        all) and ``max_lag`` decide what fires for ticks missed while no server ran."""
        spec = TaskSpec(argv=v.strings(argv, "argv"), name=task_name, queue=queue,
                        env=v.mapping(env, "env"), cwd=_cwd(cwd), meta=v.mapping(meta, "meta"),
                        timeout=timeout, priority=priority, retries=retries, mutex=mutex,
                        unique=unique, tenant=tenant)
        return ops.add_schedule(self._store, name, expr, spec, tz=tz, catch_up=catch_up,
                                max_lag=max_lag, paused=paused)

    def schedules(self) -> list[Schedule]:
        return self._store.schedules()

    def get_schedule(self, name: str) -> Schedule:
        return self._store.get_schedule(_name(name, "schedule"))

    def pause_schedule(self, name: str) -> Schedule:
        return ops.pause_schedule(self._store, _name(name, "schedule"), True)

    def resume_schedule(self, name: str) -> Schedule:
        return ops.pause_schedule(self._store, _name(name, "schedule"), False)

    def remove_schedule(self, name: str) -> None:
        self._store.remove_schedule(_name(name, "schedule"))

    def run_schedule(self, name: str) -> Task:
        """Fire the schedule's task once, now."""
        return ops.run_schedule(self._store, _name(name, "schedule"))

    # -- tenants ---------------------------------------------------------------

    def add_tenant(self, name: str, *, enabled: bool = True, run_as: str | None = None,
                   parallel: int | None = None) -> dict[str, JSON]:
        return ops.add_tenant(self._store, name, enabled=enabled, run_as=run_as,
                              parallel=parallel)

    def enable_tenant(self, name: str, *, run_as: str | None = None) -> dict[str, JSON]:
        return ops.enable_tenant(self._store, _name(name, "tenant"), run_as=run_as)

    def disable_tenant(self, name: str) -> dict[str, JSON]:
        return ops.disable_tenant(self._store, _name(name, "tenant"))

    def set_tenant_parallel(self, name: str, parallel: int | None) -> dict[str, JSON]:
        return ops.set_tenant_parallel(self._store, _name(name, "tenant"), parallel)

    def tenants(self) -> list[dict[str, JSON]]:
        return self._store.tenants()

    def meta(self, task_id: int, patch: Mapping[str, JSON]) -> Task:
        return ops.set_meta(self._store, v.task_id(task_id), v.mapping(patch, "meta", none_is_empty=False))

    # -- tokens for the HTTP API and the panel ----------------------------------------

    def create_token(self, role: str, *, tenant: str | None = None, name: str | None = None,
                     expires_in: float | None = None) -> tuple[Token, str]:
        """A new token and its secret (shown this once: only its hash is stored).
        ``role``: viewer, operator or admin; ``tenant``: it sees only that tenant;
        ``expires_in``: seconds until it is refused."""
        return access.create_token(self._store, role, tenant=tenant, name=name,
                                   expires_in=expires_in, by=ops.actor())

    def tokens(self) -> list[Token]:
        """Every token (never its secret), newest first."""
        return self._store.tokens()

    def revoke_token(self, token: int | str) -> Token:
        """Refuse the token (by id or name) from now on; its panel sessions end."""
        if isinstance(token, bool) or not isinstance(token, int | str):
            raise InvalidInput("token must be an id or a name", field="token")
        return self._store.revoke_token(token)

    def login_url(self) -> str:
        """A one-time link that opens an admin session in the panel (10 minutes, once)."""
        from .web.serve import base_url, running

        live = running(self.settings)
        base = self.settings.web_public_url or (live["url"] if live else
                                                base_url(self.settings))
        return f"{base}/login?ticket={access.login_ticket(self._store, by=ops.actor())}"

    def stats(self, since: str | float | timedelta = "1h", *, queue: str | None = None,
              tenant: str | None = None) -> Stats:
        """Statistics of the last ``since`` (``30s``, ``10m``, ``1h``, ``1d``, seconds or a
        timedelta): tasks by status now; submitted, started and finished per minute; queue
        wait and run time p50/p95/max; failures by reason; running tasks' memory; in all,
        per queue and per tenant (``queue``/``tenant`` narrow it to one)."""
        from . import stats

        return stats.collect(self._store, stats.window_of(since),
                             queue=v.check_name(queue, "queue"),
                             tenant=v.check_name(tenant, "tenant"))

    # Defined last: inside the class body, the name ``list`` would shadow the builtin.
    def list(self, *, status: str | Sequence[str] = (), queue: str | None = None,
             tenant: str | None = None, name: str | None = None,
             meta: Mapping[str, JSON] | Sequence[str] | None = None, kind: str | None = None,
             since: TimeArg = None, until: TimeArg = None, text: str | None = None,
             limit: int | None = None, cursor: str | None = None) -> TaskList:
        """Tasks newest first, filtered as ``taskyard ls`` filters them: ``name`` a glob,
        ``meta`` ``{"a.b": value}`` (or ``["a.b=JSON"]``), ``kind`` command, function or
        tracked, ``since``/``until`` submit times (ISO 8601, a duration ago, a unix time,
        a datetime). At most ``limit`` (None: all); the list's ``next_cursor`` passed as
        ``cursor`` gives the next page."""
        return search.task_list(self._store, status=status, queue=queue, tenant=tenant,
                                name=name, meta=meta, kind=kind, since=since, until=until,
                                text=text, limit=limit, cursor=cursor)

    def counts(self, **filters: Any) -> search.TaskCounts:
        """Tasks per status (``taskyard ls --counts``): the filters of ``list``; a dict
        with ``.partial`` (a filter counted task by task stopped at the newest 10,000
        matches: the counts are theirs)."""
        return search.task_counts(self._store, **filters)


def _name(name: str | None, what: str) -> str:
    """A queue, tenant or schedule name to act on or look up."""
    return v.required_name(name, what)


def _cwd(cwd: object) -> str | None:
    """A directory named by the caller (relative: to the caller's); none named: the
    task runs where its server runs (its ``cwd`` setting), as over HTTP."""
    if cwd is None or cwd == "":
        return None
    if not isinstance(cwd, str):
        raise InvalidInput("cwd must be a string (a directory path)", field="cwd")
    return os.path.abspath(cwd)


def _ids(after: object) -> tuple[int, ...]:
    return tuple(v.task_id(i) for i in v.sequence(after, "after", "task ids"))


def _start_time(run_at: float | None, delay: float | None) -> float | None:
    if delay is not None:
        return time.time() + v.real(delay, "delay", high=v.MAX_TIME)
    return run_at


def _rate_limit(given: object) -> RateLimit | None:
    return None if given is None else parse_rate_limit(given)


def _limits(given: object) -> Limits:
    if given is None:
        return NONE
    if not isinstance(given, Mapping):
        raise InvalidInput("limits must be a mapping such as {'memory': '512M'}", field="limits")
    return parse_limits(dict(given))
