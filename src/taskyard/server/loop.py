"""The server loop: one thread, one epoll, a tick of named steps.

Events (pipe data, a leader's pidfd turning readable, a wake hint, a signal)
only update memory; :meth:`Server.tick` then runs the steps in order::

    apply_requests -> enforce_deadlines -> collect_finished -> collect_output
                   -> plan_claim -> commit (one transaction, then spawn) -> heartbeat

Any :class:`StoreError` stops the server (see ``daemon.py``): memory and disk
must never diverge. The exception is :class:`StoreUnavailable` (a lost
connection to PostgreSQL): the server keeps reading its children's pipes,
reconnects with backoff, reads back what its interrupted commit did, and goes
on.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable

from ..config import Settings
from ..errors import StoreUnavailable, TransitionError
from ..lifecycle import Reason, Status
from ..logs import log_event
from ..messages import MessageWrite
from ..retention import Retention, server_rule
from ..store.base import (
    Batch,
    Claim,
    LostAttempt,
    Outcome,
    OutputWrite,
    ServerStore,
    Spawned,
    WakeListener,
)
from ..store.hooks import HOOK_QUEUE
from ..store.sqlite import file_identity
from . import cgroups, controls, environ, procs, tracked, upkeep
from . import child as childmod
from .child import Capture, Child
from .hints import Hints
from .hooks import Hooks, log_hook_ran
from .poller import Poller
from .pool import FunctionRun, Pool
from .spawner import Spawner
from .statusfiles import Ending, StatusFiles, params
from .translog import TransitionLog

log = logging.getLogger("taskyard.server")

FLUSH_BYTES = 256 * 1024  #: a stream with this much of its head pending is flushed at once
FIREHOSE = 4 * 1024 * 1024  #: past its head, a stream with this much pending is a firehose...
FIREHOSE_WAIT = 1.0  #: ...flushed only this often: most of its bytes will fall out of the tail
MEMORY_BUDGET = 64 * 1024 * 1024  #: output held in memory across all streams
DRAIN_GRACE = 2.0  #: seconds to wait for pipes held open by escaped processes


class Server:
    def __init__(self, settings: Settings, store: ServerStore, instance_id: str) -> None:
        self.settings = settings
        self.store = store
        self.me = instance_id
        self.host, self.boot_id = procs.hostname(), procs.boot_id()
        self.by = f"server:{instance_id}"
        self.slots = settings.effective_slots
        self.poller = Poller()
        self.children: dict[int, Child] = {}
        self.flush_now: set[Capture] = set()
        self.widened: set[int] = set()  #: pipe fds given a 1 MiB buffer
        self.closed: list[Capture] = []  #: streams at EOF with bytes not yet stored
        self.done: list[Child] = []  #: attempts whose leader is reaped and pipes closed
        self.held = 0  #: output bytes in memory, not yet stored
        self.batch = Batch()  #: writes waiting for the next tick's transaction
        #: pids of attempts started since the last flush of them; an attempt that ends
        #: first gets its pid written with its outcome, the others at next_flush_spawned
        self.unrecorded: dict[int, Spawned] = {}
        self.next_flush_spawned = float("inf")
        self.next_flush: float | None = None
        self.hints = Hints()  #: which steps of the tick have something to look at
        self.next_due: float | None = None  #: unix time the next scheduled task is due
        self.cron_leader = False  #: this server holds the cron lease (fires schedules)
        self.wake: WakeListener | None = None  #: the store's wake hints, if it has them
        self.inflight: Batch | None = None  #: the batch a commit is applying
        self.next_tick: float | None = None  #: unix time of the next cron tick
        self.rate_wake_at: float | None = None  #: unix time a rate limit frees a start
        #: short of file descriptors: run at most this many tasks (None: no such limit);
        #: raised by one at a poll that finds room, set again by a spawn that falls short
        self.fd_cap: int | None = None
        self.stopping: str | None = None  #: None | "warm" | "now"
        self.last_beat: float | None = None  #: unix time of our last heartbeat
        self.pidfile_id = file_identity(settings.pidfile)
        self.judge_silence_at = 0.0  #: peers are judged by their silence from then on
        #: called at every heartbeat (the web process's keeper, say)
        self.on_heartbeat: list[Callable[[], None]] = []
        self.on_stop: list[Callable[[str], None]] = []  #: called with the mode at stop()
        self.stop_deadline: float | None = None
        now = time.monotonic()
        self.next_poll = now
        self.next_heartbeat = now + settings.heartbeat_interval
        env = environ.task_env(settings)
        self.spawner = Spawner(env, settings.head_bytes, settings.tail_bytes)
        self.spawner.messages_tail = settings.messages_tail
        self.cgroups = cgroups.start(settings, instance_id)  #: memory limits, whole-task
        self.spawner.cgroups = self.cgroups
        store.claim_bounds = (settings.head_bytes, settings.tail_bytes, settings.max_tail_bytes)
        store.claim_status_root = settings.status_dir  #: claims fix their status files
        self.status = StatusFiles(settings)
        self.transitions = TransitionLog(instance_id)  #: the log's lines of transitions
        self.spawner.status_env = settings.status_file_env.encode()
        self.hooks = Hooks(settings, store, instance_id, self.status)
        self.retention = Retention(store, server_rule(settings.retain, settings.retain_count))
        worker_env = environ.worker_env(self.spawner.base_env, settings)
        self.pool = Pool(self, worker_env, self.slots)

    # -- events ---------------------------------------------------------------

    def listen(self) -> None:
        """Register the store's wake hints (a socket, or PostgreSQL's LISTEN)."""
        wake = self.store.wake_listener()
        if wake is None:
            return
        self.wake = wake
        self.poller.add(wake.fileno(), self._on_wake)

    def _on_wake(self) -> None:
        if self.wake is None:
            return
        try:
            self.on_hint(self.wake.drain())
        except StoreUnavailable as exc:  # the LISTEN connection broke: poll, listen again
            log.warning("wake hints lost (%s); polling until a new listener connects", exc)
            self.unlisten()

    def unlisten(self) -> None:
        if self.wake is not None:
            self.poller.remove(self.wake.fileno())
            with contextlib.suppress(Exception):
                self.wake.close()
            self.wake = None

    def on_hint(self, payload: bytes) -> None:
        """A wake hint: ``w`` a task was queued, ``d`` one was scheduled (a start time,
        dependencies), ``c`` schedules changed, ``r`` a request, ``s`` server control;
        an empty one means anything."""
        every = not payload
        self.hints.queue = self.hints.queue or b"w" in payload or every
        self.hints.due = self.hints.due or b"d" in payload or every
        self.hints.cron = self.hints.cron or b"c" in payload or every
        self.hints.request = self.hints.request or b"r" in payload or every
        self.hints.control = self.hints.control or b"s" in payload or every

    def wait_events(self) -> None:
        now = time.monotonic()
        deadlines = [self.next_poll, self.next_heartbeat, self.next_flush_spawned,
                     self.hooks.next_check]
        for at in (self.next_due, self.next_tick, self.rate_wake_at):
            if at is not None:
                deadlines.append(now + at - time.time())
        if self.next_flush is not None:
            deadlines.append(self.next_flush)
        if self.stop_deadline is not None:
            deadlines.append(self.stop_deadline)
        if self.transitions.pending:
            deadlines.append(self.transitions.due)
        for c in self.children.values():
            if c.kill_deadline is not None:
                deadlines.append(c.kill_deadline)
            if c.deadline is not None:
                deadlines.append(c.deadline)
            if c.drain_deadline is not None:
                deadlines.append(c.drain_deadline)
        busy = (self.closed or self.flush_now or self.batch.outcomes or self.done
                or self.hints.promote or self.hints.due)
        self.poller.wait(0.0 if busy else max(0.0, min(deadlines) - now))

    def _on_exit(self, c: Child) -> None:
        """The leader exited: reap it, then take what is left in its pipes right away
        (its group is dead, so they are at EOF unless a process escaped it)."""
        self.poller.remove(c.pidfd)
        c.reap(time.monotonic(), DRAIN_GRACE)
        for fd in list(c.streams):
            while fd in c.streams and self._read(c, fd):
                pass
        self._maybe_done(c)

    def _maybe_done(self, c: Child) -> None:
        if c.done and c not in self.done:
            self.done.append(c)

    def _read(self, c: Child, fd: int) -> bool:
        """One read (fair to other tasks); True if data came and more may follow."""
        buf = c.streams[fd]
        try:
            data = os.read(fd, childmod.READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            self.poller.remove(fd)
            c.close_stream(fd)
            self.widened.discard(fd)
            if buf.dirty:
                self.closed.append(buf)
            self._maybe_done(c)
            return False
        if len(data) >= childmod.PIPE_MIN and fd not in self.widened:
            self.widened.add(fd)  # a full pipe: give this busy stream a bigger buffer
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, childmod.F_SETPIPE_SZ, childmod.PIPE_SIZE)
        self.feed(buf, data)
        return True

    def feed(self, buf: Capture, data: bytes) -> None:
        """Take ``data`` of a task's stream into ``buf``; flush soon, or now when due."""
        now = time.monotonic()
        before = buf.pending
        buf.feed(data, now)
        self.held += buf.pending - before
        if (buf.pending >= FLUSH_BYTES and not buf.past_head) or self.held > MEMORY_BUDGET:
            self.flush_now.add(buf)
        elif self.next_flush is None:
            self.next_flush = now + self.settings.flush_interval

    def _reader(self, c: Child, fd: int) -> Callable[[], None]:
        def on_readable() -> None:
            self._read(c, fd)

        return on_readable

    def on_stdin_writable(self, c: Child, fd: int) -> None:
        c.write_stdin()
        if c.stdin_fd is None or not c.stdin_buf:
            self.poller.remove(fd)

    # -- the tick ---------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.next_poll:
            self.hints.poll()
            if self.fd_cap is not None and procs.fds_free(procs.FDS_PER_TASK):  # room for one more
                self.fd_cap = None if self.fd_cap + 1 >= self.slots else self.fd_cap + 1
            self.next_poll = now + self.settings.poll_interval
        self.fire_schedules()
        self.promote_due()
        self.apply_requests(now)
        self.enforce_deadlines(now)
        batch, self.batch = self.batch, Batch()
        self.collect_finished(batch)
        self.collect_output(batch, now)
        self.plan_claim(batch)
        if now >= self.next_flush_spawned:
            self.next_flush_spawned = float("inf")
            batch.spawned.extend(self.unrecorded.values())
            self.unrecorded.clear()
        if batch:
            self.commit(batch)
        self.heartbeat(now)
        if now >= self.hooks.next_check or not self.hooks.sender.idle():
            self.hooks.run(now, self.settings.heartbeat_interval)
        self.transitions.tick(self.store, self.cron_leader, now)

    def fire_schedules(self) -> None:
        """Submit the tasks of due cron ticks. One server at a time does (the holder of
        the cron lease); exactly-once does not depend on it (see fire_schedules)."""
        if self.stopping or not self.cron_leader:
            return
        if self.hints.cron or (self.next_tick is not None and time.time() >= self.next_tick):
            self.hints.cron = False
            fired, self.next_tick = self.store.fire_schedules(time.time(), f"cron:{self.me}")
            if fired:
                self.hints.queue = self.hints.due = self.hints.promote = True

    def promote_due(self) -> None:
        """Queue scheduled tasks whose start time has come."""
        if self.hints.due:
            self.hints.due = False
            self.next_due = self.store.next_due()
        if self.hints.promote or (self.next_due is not None and time.time() >= self.next_due):
            self.hints.promote = False
            if self.store.promote_due(time.time(), self.by):
                self.hints.queue = True
            self.next_due = self.store.next_due()

    def collect_finished(self, batch: Batch) -> None:
        """Outcomes of attempts whose leader exited and pipes closed, with their last output."""
        for c in self.done:
            outcome = c.outcome()
            batch.outcomes.append(outcome)
            del self.children[c.task_id]
            spawned = self.unrecorded.pop(c.task_id, None)
            if spawned is not None:  # written with the outcome
                batch.spawned.append(spawned)
            log.debug("task %d attempt %d %s%s", c.task_id, c.epoch, outcome.status,
                      f" ({outcome.reason})" if outcome.reason else "")
            if c.claim.queue == HOOK_QUEUE:
                log_hook_ran(c.claim, outcome, time.monotonic() - c.started)
        self.done = []
        if self.closed:
            batch.output.extend(self._take(self.closed))
            self.closed = []

    def _take(self, buffers: list[Capture] | set[Capture]) -> list[OutputWrite | MessageWrite]:
        writes: list[OutputWrite | MessageWrite] = []
        for buf in buffers:
            self.held -= buf.pending
            writes.extend(buf.take())
        return writes

    def collect_output(self, batch: Batch, now: float) -> None:
        """Output that is due: flushed streams, and on the flush timer every dirty
        stream but firehoses, which are held (bounded by the tail) up to FIREHOSE_WAIT."""
        due = self.flush_now
        self.flush_now = set()
        if self.next_flush is not None and now >= self.next_flush:
            self.next_flush = None
            for buf in (b for c in self.children.values() for b in c.streams.values()):
                if not buf.dirty:
                    continue
                if (buf.past_head and buf.pending >= FIREHOSE and buf.first_pending is not None
                        and now - buf.first_pending < FIREHOSE_WAIT):
                    self.next_flush = now + self.settings.flush_interval
                    continue
                due.add(buf)
        batch.output.extend(self._take(due))

    def plan_claim(self, batch: Batch) -> None:
        slots = self.slots if self.fd_cap is None else min(self.slots, self.fd_cap)
        free = slots - len(self.children)
        if self.rate_wake_at is not None and time.time() >= self.rate_wake_at:
            self.rate_wake_at, self.hints.queue = None, True  # a held-back task may start
        # A task that ends frees its queue's place and its mutex: claim in the same
        # transaction (tasks held back by a limit need no hint to start).
        if not self.stopping and free > 0 and (self.hints.queue or batch.outcomes):
            batch.claim = free

    def commit(self, batch: Batch) -> None:
        """Apply the tick's writes in one transaction, then spawn what was claimed."""
        self.inflight = batch
        result = self.store.apply(self.me, batch)
        self.inflight = None
        self.transitions.pending = True
        for task_id in result.stale:
            self._lost_ownership(task_id)
        if batch.outcomes:
            self.hints.queue = True
            self.hooks.ended_some(time.monotonic())
            if any(o.status is Status.FAILED for o in batch.outcomes):
                self.hints.due = True  # it may have been scheduled for a retry
        if result.dependents:
            self.hints.promote = True  # tasks waiting for these may start, or fail
        if len(result.claims) < batch.claim:
            self.hints.queue = False
        if batch.claim:
            self.rate_wake_at = result.rate_wake_at
        if self.status.live:
            self._status_ended(batch, result.stale)
        self.start(result.claims)

    def status_crashed(self, attempt: LostAttempt) -> None:
        """``ERR crashed`` for an attempt of a dead server of this host."""
        task = self.store.get(attempt.task_id)
        recorded = next((a.status_file for a in self.store.attempts(task.id)
                         if a.epoch == attempt.epoch), None)
        self.status.put(task.id, task.queue, Ending(task.status, task.reason),
                        params(task.argv, task.function, task.kwargs), recorded)

    def _status_ended(self, batch: Batch, stale: list[int]) -> None:
        """Final lines of the status files of attempts whose ending was recorded (as the
        store has the task now: a reported error, a retry scheduled)."""
        for task_id in stale:  # not ours any more: whoever took it over says so
            self.status.abandon(task_id)
        for o in batch.outcomes:
            if o.task_id in self.status.live and o.task_id not in stale:
                task = self.store.get(o.task_id)
                reported = None
                if task.status is Status.FAILED and task.reason is not Reason.REPORTED:
                    reported = next((a.report_message for a in self.store.attempts(o.task_id)
                                     if a.epoch == o.epoch and a.report == "error"), None)
                self.status.ended(o.task_id, Ending(task.status, task.reason, task.exit_code,
                                                    task.signal, task.error, reported))

    def start(self, claims: list[Claim]) -> None:
        self.spawner.starved = False
        for claim in claims:
            if self.spawner.starved:  # out of descriptors: give the rest back, untried
                self.batch.outcomes.append(Outcome(claim.task_id, claim.epoch, Status.QUEUED))
                continue
            spawned = (self.pool.start(claim) if claim.function is not None
                       else self.spawner.spawn(claim))
            if isinstance(spawned, Outcome):
                log.info("task %d attempt %d could not start: %s", claim.task_id, claim.epoch,
                         spawned.error)
                self.batch.outcomes.append(spawned)
                if self.spawner.starved:
                    if self.fd_cap is None:
                        log.warning("out of file descriptors (the limit is %d): running at"
                                    " most %d task(s) at once until there are more; raise"
                                    " `ulimit -n` or lower --slots", procs.fd_limit(),
                                    len(self.children))
                    self.fd_cap = len(self.children)
                continue
            self._adopt(spawned)
            self.unrecorded[claim.task_id] = Spawned(claim.task_id, claim.epoch, spawned.pid, None)
            if claim.status_file is not None:
                self.status.running(claim.task_id, claim.queue, claim.status_file,
                                    params(claim.argv, claim.function, claim.kwargs))
        if self.unrecorded and self.next_flush_spawned == float("inf"):
            # Off the hot path: most short tasks end first and their pid rides on the
            # outcome. Recovery does not need the pid in time: it finds a crashed
            # server's processes by their TASKYARD_RUN tag too.
            self.next_flush_spawned = time.monotonic() + self.settings.flush_interval

    def _lost_ownership(self, task_id: int) -> None:
        """Our attempt was taken over (fenced off): kill its processes, record nothing."""
        c = self.children.get(task_id)
        log.error("task %d: the attempt is no longer ours (fenced off)%s", task_id,
                  "; killing its processes" if c else "")
        if c is not None:
            c.kill(signal.SIGKILL, Reason.KILLED, escalate_at=None)

    def _adopt(self, c: Child) -> None:
        self.children[c.task_id] = c
        if c.claim.timeout:
            c.deadline = time.monotonic() + c.claim.timeout
        if isinstance(c, FunctionRun):
            return  # its worker's pidfd and pipes are watched by the pool
        self.poller.add(c.pidfd, lambda: self._on_exit(c))
        for fd in c.streams:
            self.poller.add(fd, self._reader(c, fd))

    # -- control requests -------------------------------------------------------

    def apply_requests(self, now: float) -> None:
        if not self.hints.request:
            return
        self.hints.request = False
        for request in self.store.pending_requests(self.me):
            c = self.children.get(request.task_id)
            if c is None or c.epoch != request.epoch or c.returncode is not None:
                self.store.complete_request(request.id, "rejected", "the attempt has ended")
                continue
            error = controls.apply(self, c, request, now)
            self.store.complete_request(request.id, "rejected" if error else "done", error)
        tracked.apply_kills(self.store, self.host, self.boot_id, f"server:{self.me}")

    # -- time ---------------------------------------------------------------------

    def enforce_deadlines(self, now: float) -> None:
        if self.stop_deadline is not None and now >= self.stop_deadline:
            self.stop_deadline = None
            self.stop("now")
        for c in list(self.children.values()):
            if c.deadline is not None and now >= c.deadline:
                c.deadline = None
                if c.returncode is None and c.stop_reason is None:
                    log.info("task %d ran past its timeout: SIGTERM", c.task_id)
                    c.kill(signal.SIGTERM, Reason.TIMEOUT,
                           escalate_at=now + self.settings.kill_grace)
            if c.kill_deadline is not None and now >= c.kill_deadline:
                log.info("task %d did not stop within the grace period: SIGKILL", c.task_id)
                c.kill_deadline = None
                c.signal_group(signal.SIGKILL)
            if c.drain_deadline is not None and now >= c.drain_deadline and c.streams:
                log.warning("task %d: output pipes still open after its process group"
                            " ended (a process escaped with setsid?); closing them", c.task_id)
                for fd in list(c.streams):
                    self.poller.remove(fd)
                    buf = c.close_stream(fd)
                    if buf.dirty:
                        self.closed.append(buf)
                self._maybe_done(c)

    def heartbeat(self, now: float, force: bool = False) -> None:
        """Tell the store we live, and do what is done at heartbeats (see upkeep.py)."""
        if now < self.next_heartbeat and not self.hints.control and not force:
            return
        self.hints.control = False
        self.next_heartbeat = now + self.settings.heartbeat_interval
        upkeep.beat(self, now)

    def stop_requested(self, mode: str) -> None:
        kind, _, timeout = mode.partition(":")
        if kind == "now":
            self.stop("now")
        elif self.stopping is None:
            self.stop("warm")
            if timeout:
                self.stop_deadline = time.monotonic() + float(timeout)
                self._ask_functions_to_stop()

    def _ask_functions_to_stop(self) -> None:
        """A warm stop with a deadline: function tasks see ``ctx.should_stop()``."""
        for c in self.children.values():
            if isinstance(c, FunctionRun):
                with contextlib.suppress(TransitionError):
                    self.store.ask_stop(c.task_id)

    def stop(self, mode: str) -> None:
        """``warm``: claim nothing more, let running tasks finish. ``now``: also
        TERM every task's group (KILL after the grace) and record them stopped."""
        if self.stopping == "now":
            return
        if self.stopping != mode:
            log_event(log, "server.stopping", f"stopping ({mode}): {len(self.children)} task(s)"
                      " running", server=self.me, host=self.host, pid=os.getpid(), mode=mode,
                      running=len(self.children))
        self.stopping = mode
        for hook in self.on_stop:
            hook(mode)
        if mode == "now":
            deadline = time.monotonic() + self.settings.kill_grace
            for c in self.children.values():
                c.kill(signal.SIGTERM, Reason.SHUTDOWN, escalate_at=deadline)

    @property
    def finished(self) -> bool:
        return self.stopping is not None and not self.children and not self.batch

    def run_forever(self) -> None:
        if self.settings.imports:
            self.pool.prestart()
        self.heartbeat(time.monotonic(), force=True)  # take the cron lease if it is free
        while not self.finished:
            self.wait_events()
            try:
                self.tick()
            except StoreUnavailable as exc:
                upkeep.reconnect(self, exc)
        self.pool.close()

    def kill_all(self) -> None:
        """Emergency: SIGKILL every task group we own, without touching the store."""
        for c in self.children.values():
            c.signal_group(signal.SIGKILL)
        self.pool.kill_all()
