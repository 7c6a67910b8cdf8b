"""The server loop: one thread, one selector, a tick of named steps.

Events (pipe data, a leader's pidfd turning readable, a wake hint, a signal)
only update memory; :meth:`Server.tick` then runs the steps in order::

    reap_finished -> apply_requests -> enforce_deadlines -> flush_output
                  -> claim_and_spawn -> heartbeat

Any :class:`StoreError` stops the server (see ``daemon.py``): memory and disk
must never diverge.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import time
from dataclasses import dataclass

from ..config import Settings
from ..errors import StaleAttempt
from ..lifecycle import Reason
from ..model import Request
from ..store.base import Outcome, OutputWrite, Spawned
from ..store.sqlite import SQLiteStore
from . import child as childmod
from .child import Child
from .output import StreamBuffer

log = logging.getLogger("taskyard.server")

FLUSH_BYTES = 256 * 1024  #: a stream with this much pending is flushed at once
DRAIN_GRACE = 2.0  #: seconds to wait for pipes held open by escaped processes
READS_PER_EVENT = 4  #: bound work per readable pipe so one chatty task cannot starve others


@dataclass(frozen=True)
class _Fd:
    child: Child
    kind: str  # "out" | "pid" | "stdin"


class Server:
    def __init__(self, settings: Settings, store: SQLiteStore, instance_id: str) -> None:
        self.settings = settings
        self.store = store
        self.me = instance_id
        self.by = f"server:{instance_id}"
        self.slots = settings.effective_slots
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, Child] = {}
        self.flush_now: set[StreamBuffer] = set()
        self.closed: list[StreamBuffer] = []  #: streams at EOF with bytes not yet stored
        self.next_flush: float | None = None
        self.queue_hint = True
        self.request_hint = True
        self.control_hint = False
        self.stopping: str | None = None  #: None | "warm" | "now"
        self.stop_deadline: float | None = None
        now = time.monotonic()
        self.next_poll = now
        self.next_heartbeat = now + settings.heartbeat_interval
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("TASKYARD_")]:
            del env[key]
        env["TASKYARD_HOME"] = str(settings.home)
        self.base_env = env

    # -- selector plumbing ------------------------------------------------------

    def watch(self, fileobj: int | object, data: object, events: int = selectors.EVENT_READ) -> None:
        self.sel.register(fileobj, events, data)  # type: ignore[arg-type]

    def on_hint(self, payload: bytes) -> None:
        """A wake datagram: ``w`` work was submitted, ``r`` a request, ``s`` server control."""
        self.queue_hint = self.queue_hint or b"w" in payload or not payload
        self.request_hint = self.request_hint or b"r" in payload or b"w" in payload
        self.control_hint = self.control_hint or b"s" in payload

    def wait_events(self) -> None:
        now = time.monotonic()
        deadlines = [self.next_poll, self.next_heartbeat]
        if self.next_flush is not None:
            deadlines.append(self.next_flush)
        if self.stop_deadline is not None:
            deadlines.append(self.stop_deadline)
        for c in self.children.values():
            if c.kill_deadline is not None:
                deadlines.append(c.kill_deadline)
            if c.drain_deadline is not None:
                deadlines.append(c.drain_deadline)
        busy = self.closed or self.flush_now or any(c.done for c in self.children.values())
        timeout = 0.0 if busy else max(0.0, min(deadlines) - now)
        for key, mask in self.sel.select(timeout):
            data = key.data
            if isinstance(data, _Fd):
                self._on_child_event(data, key.fd, mask)
            elif callable(data):
                data()

    def _on_child_event(self, ref: _Fd, fd: int, mask: int) -> None:
        c = ref.child
        if ref.kind == "pid":
            self.sel.unregister(fd)
            c.reap(time.monotonic(), DRAIN_GRACE)
        elif ref.kind == "out":
            self._read(c, fd)
        elif ref.kind == "stdin":
            c.write_stdin()
            if c.stdin_fd is None or not c.stdin_buf:
                self.sel.unregister(fd)

    def _read(self, c: Child, fd: int) -> None:
        buf = c.streams[fd]
        for _ in range(READS_PER_EVENT):
            try:
                data = os.read(fd, childmod.READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                self.sel.unregister(fd)
                c.close_stream(fd)
                if buf.dirty:
                    self.closed.append(buf)
                break
            buf.feed(data)
        if buf.pending >= FLUSH_BYTES:
            self.flush_now.add(buf)
        elif buf.dirty and self.next_flush is None:
            self.next_flush = time.monotonic() + self.settings.flush_interval

    # -- the tick ---------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.next_poll:
            self.queue_hint = self.request_hint = True
            self.next_poll = now + self.settings.poll_interval
        self.reap_finished()
        self.apply_requests(now)
        self.enforce_deadlines(now)
        self.flush_output(now)
        self.claim_and_spawn()
        self.heartbeat(now)

    def reap_finished(self) -> None:
        """Record the outcome of every attempt whose leader exited and pipes closed,
        together with its last output, in one transaction."""
        done = [c for c in self.children.values() if c.done]
        if not done:
            return
        outcomes = [c.outcome() for c in done]
        writes = self._take(self.closed)
        self.closed = []
        stale = self.store.finish(self.me, outcomes, self.by, writes)
        for c, o in zip(done, outcomes, strict=True):
            del self.children[c.task_id]
            log.info("task %d attempt %d %s%s", c.task_id, c.epoch, o.status,
                     f" ({o.reason})" if o.reason else "")
        for task_id in stale:
            log.warning("task %d: outcome not recorded, the attempt is no longer ours", task_id)
        if done:
            self.queue_hint = True

    def _take(self, buffers: list[StreamBuffer] | set[StreamBuffer]) -> list[OutputWrite]:
        writes: list[OutputWrite] = []
        for buf in buffers:
            writes.extend(buf.take())
        return writes

    def flush_output(self, now: float) -> None:
        due = set(self.flush_now)
        if self.next_flush is not None and now >= self.next_flush:
            due.update(b for c in self.children.values() for b in c.streams.values() if b.dirty)
            self.next_flush = None
        due.update(b for b in self.closed if b.task_id not in self._finishing())
        if not due:
            return
        self.closed = [b for b in self.closed if b not in due]
        self.flush_now.clear()
        writes = self._take(due)
        if not writes:
            return
        try:
            self.store.append_output(self.me, writes)
        except StaleAttempt as exc:
            self._lost_ownership(str(exc), {w.task_id for w in writes})

    def _finishing(self) -> set[int]:
        return {c.task_id for c in self.children.values() if c.done}

    def _lost_ownership(self, why: str, task_ids: set[int]) -> None:
        """Our attempt was taken over (fenced off): kill its processes, record nothing."""
        log.error("%s; killing its processes", why)
        for task_id in task_ids:
            c = self.children.get(task_id)
            if c is not None:
                c.kill(signal.SIGKILL, Reason.KILLED, escalate_at=None)

    def claim_and_spawn(self) -> None:
        free = self.slots - len(self.children)
        if self.stopping or free <= 0 or not self.queue_hint:
            return
        claims = self.store.claim(self.me, free, self.me)
        if len(claims) < free:
            self.queue_hint = False
        failed: list[Outcome] = []
        spawned: list[Spawned] = []
        for claim in claims:
            result = childmod.spawn(claim, self.base_env, self.settings.head_bytes,
                                    self.settings.tail_bytes)
            if isinstance(result, Outcome):
                log.info("task %d attempt %d could not start: %s", claim.task_id, claim.epoch,
                         result.error)
                failed.append(result)
                continue
            self._adopt(result)
            spawned.append(Spawned(claim.task_id, claim.epoch, result.pid, result.pid_start))
        if spawned:
            self.store.record_spawned(self.me, spawned)
        if failed:
            self.store.finish(self.me, failed, self.by)
            self.queue_hint = True

    def _adopt(self, c: Child) -> None:
        self.children[c.task_id] = c
        self.watch(c.pidfd, _Fd(c, "pid"))
        for fd in c.streams:
            self.watch(fd, _Fd(c, "out"))

    # -- control requests -------------------------------------------------------

    def apply_requests(self, now: float) -> None:
        if not self.request_hint:
            return
        self.request_hint = False
        for request in self.store.pending_requests(self.me):
            c = self.children.get(request.task_id)
            if c is None or c.epoch != request.epoch or c.returncode is not None:
                self.store.complete_request(request.id, "rejected", "the attempt has ended")
                continue
            error = self._apply(c, request, now)
            self.store.complete_request(request.id, "rejected" if error else "done", error)

    def _apply(self, c: Child, request: Request, now: float) -> str | None:
        payload = request.payload if isinstance(request.payload, dict) else {}
        kind = request.kind
        if kind == "kill":
            was_paused = c.paused
            sig = int(payload.get("signal", signal.SIGTERM))
            grace = now + self.settings.kill_grace if payload.get("escalate") else None
            c.kill(sig, Reason.KILLED, escalate_at=grace)
            if was_paused and not c.paused:
                self.store.set_paused(self.me, c.task_id, c.epoch, False, self.by)
            return None
        if kind in ("pause", "resume"):
            return self._pause(c, kind == "pause")
        if kind in ("stdin", "eof"):
            return self._stdin(c, kind, payload)
        return f"unknown request {kind!r}"

    def _pause(self, c: Child, pause: bool) -> str | None:
        if c.paused == pause:
            return f"it is already {'paused' if pause else 'running'}"
        c.signal_group(signal.SIGSTOP if pause else signal.SIGCONT)
        c.paused = pause
        self.store.set_paused(self.me, c.task_id, c.epoch, pause, self.by)
        return None

    def _stdin(self, c: Child, kind: str, payload: dict[str, object]) -> str | None:
        if c.stdin_fd is None:
            return "its stdin is closed"
        if kind == "eof":
            c.stdin_eof = True
        else:
            c.stdin_buf += bytes.fromhex(str(payload.get("data", "")))
        fd = c.stdin_fd
        c.write_stdin()
        if c.stdin_fd is not None and c.stdin_buf and fd not in self.sel.get_map():
            self.watch(fd, _Fd(c, "stdin"), selectors.EVENT_WRITE)
        return None

    # -- time ---------------------------------------------------------------------

    def enforce_deadlines(self, now: float) -> None:
        if self.stop_deadline is not None and now >= self.stop_deadline:
            self.stop_deadline = None
            self.stop("now")
        for c in list(self.children.values()):
            if c.kill_deadline is not None and now >= c.kill_deadline:
                log.info("task %d did not stop within the grace period: SIGKILL", c.task_id)
                c.kill_deadline = None
                c.signal_group(signal.SIGKILL)
            if c.drain_deadline is not None and now >= c.drain_deadline and c.streams:
                log.warning("task %d: output pipes still open after its process group"
                            " ended (a process escaped with setsid?); closing them", c.task_id)
                for fd in list(c.streams):
                    self.sel.unregister(fd)
                    buf = c.close_stream(fd)
                    if buf.dirty:
                        self.closed.append(buf)

    def heartbeat(self, now: float) -> None:
        if now < self.next_heartbeat and not self.control_hint:
            return
        self.control_hint = False
        self.next_heartbeat = now + self.settings.heartbeat_interval
        instance = self.store.heartbeat(self.me, time.time())
        if instance.stop_request:
            self._stop_requested(instance.stop_request)

    def _stop_requested(self, mode: str) -> None:
        kind, _, timeout = mode.partition(":")
        if kind == "now":
            self.stop("now")
        elif self.stopping is None:
            self.stop("warm")
            if timeout:
                self.stop_deadline = time.monotonic() + float(timeout)

    def stop(self, mode: str) -> None:
        """``warm``: claim nothing more, let running tasks finish. ``now``: also
        TERM every task's group (KILL after the grace) and record them stopped."""
        if self.stopping == "now":
            return
        if self.stopping != mode:
            log.info("stopping (%s): %d task(s) running", mode, len(self.children))
        self.stopping = mode
        if mode == "now":
            deadline = time.monotonic() + self.settings.kill_grace
            for c in self.children.values():
                c.kill(signal.SIGTERM, Reason.SHUTDOWN, escalate_at=deadline)

    @property
    def finished(self) -> bool:
        return self.stopping is not None and not self.children

    def run_forever(self) -> None:
        while not self.finished:
            self.wait_events()
            self.tick()

    def kill_all(self) -> None:
        """Emergency: SIGKILL every task group we own, without touching the store."""
        for c in self.children.values():
            c.signal_group(signal.SIGKILL)
