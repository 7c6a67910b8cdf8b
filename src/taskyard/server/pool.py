"""The pool of worker processes that run function tasks, one task per worker at a time.

A worker (``python -m taskyard.worker``) is started once and runs many tasks.
Each runs in its own process group, so a function task is signalled like a
command: kill and timeout end the worker (a fresh one is started in its
place), pause and resume stop and continue it. The worker's stdout and stderr
pipes belong to the task it runs; when it reports a task done, the server
drains them before the next task is sent, so no byte lands in the wrong task.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..lifecycle import Reason, Status
from ..store.base import Claim, Outcome
from . import procs
from .child import _DEFAULT_SIGNALS, Capture, Child, kill_and_reap
from .rlimits import TailWatch

if TYPE_CHECKING:
    from .loop import Server

log = logging.getLogger("taskyard.server")

RESTART_PAUSE = 5.0  #: seconds before starting workers again after one failed its imports


@dataclass(eq=False)
class FunctionRun(Child):
    """A function task's attempt, running in ``worker``. Signals go to the worker's
    group; the attempt ends with the worker's report (or its death)."""

    worker: Worker | None = None
    report: dict[str, Any] | None = None

    def close_stream(self, fd: int) -> Capture:
        return self.streams.pop(fd)  # the worker's pipe: it outlives the attempt

    def reap(self, now: float, drain_grace: float) -> None:
        raise AssertionError("a function run is ended by its worker, not reaped")

    def outcome(self) -> Outcome:
        ended = self._reported()
        used = self.report.get("usage") if self.report is not None else None
        if isinstance(used, list) and len(used) == 3:
            return ended._replace(usage=(float(used[0]), float(used[1]), int(used[2])))
        return ended

    def _reported(self) -> Outcome:
        report = self.report
        if report is None:  # the worker died: killed, timed out, or crashed
            outcome = super().outcome()
            if outcome.status is Status.FAILED and outcome.reason in (Reason.EXIT, Reason.SIGNAL):
                return outcome._replace(error=f"its worker died ({outcome.error or 'exit '}"
                                              f"{'' if outcome.error else outcome.exit_code})")
            return outcome
        if report.get("yielded"):
            return Outcome(self.task_id, self.epoch, Status.QUEUED)
        if report.get("ok"):
            return Outcome(self.task_id, self.epoch, Status.SUCCEEDED, result=report["result"])
        reason = {"spawn": Reason.SPAWN, "limit": Reason.LIMIT}.get(str(report.get("reason")),
                                                                  Reason.EXCEPTION)
        return Outcome(self.task_id, self.epoch, Status.FAILED, reason,
                       error=str(report.get("error", "")))


@dataclass(eq=False)
class Worker:
    pid: int
    pidfd: int
    pid_start: int | None
    control: int  #: write end of its fd 0
    report: int  #: read end of its fd 3
    out: int
    err: int
    run: FunctionRun | None = None  #: the task it runs alone
    #: async tasks it runs side by side (async_concurrency > 1), by (task, epoch)
    shared: dict[tuple[int, int], FunctionRun] = field(default_factory=dict)
    ready: bool = False
    leaving: bool = False  #: it said it recycles itself (or was told to go)
    pending: bytearray = field(default_factory=bytearray)  #: a report line, in part
    outgoing: bytearray = field(default_factory=bytearray)  #: to write to its fd 0


class Pool:
    def __init__(self, server: Server, env: dict[bytes, bytes], size: int) -> None:
        self.server = server
        self.env = env
        self.size = size
        self.workers: dict[int, Worker] = {}
        self.started = 0
        self.failed: str | None = None  #: why the last worker could not start
        self.retry_at = 0.0
        self.concurrency = server.settings.async_concurrency
        self.async_names: set[str] = set()  #: async functions, as the workers reported

    # -- starting and stopping workers -----------------------------------------------------

    def _spawn(self) -> Worker:
        fds: list[int] = []
        try:
            control_r, control_w = os.pipe2(os.O_CLOEXEC)
            report_r, report_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds = [control_r, control_w, report_r, report_w, out_r, out_w, err_r, err_w]
            self.started += 1
            env = dict(self.env)
            env[b"TASKYARD_RUN"] = f"{self.server.me}.w{self.started}".encode()
            # function tasks run in the cwd setting, else where the server was started
            settings = self.server.settings
            env[b"TASKYARD_WORKER_CWD"] = os.fsencode(settings.cwd or settings.import_path)
            actions = [(os.POSIX_SPAWN_DUP2, control_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                       (os.POSIX_SPAWN_DUP2, err_w, 2), (os.POSIX_SPAWN_DUP2, report_w, 3)]
            pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "taskyard.worker"], env,
                                 file_actions=actions, setpgroup=0, setsigdef=_DEFAULT_SIGNALS,
                                 setsigmask=())
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # out of descriptors: a worker that cannot be watched is ended
            kill_and_reap(pid)
            for fd in fds:
                os.close(fd)
            raise
        for fd in (control_r, report_w, out_w, err_w):
            os.close(fd)
        for fd in (report_r, out_r, err_r, control_w):
            os.set_blocking(fd, False)
        worker = Worker(pid, pidfd, procs.start_time(pid), control_w, report_r, out_r, err_r)
        self.workers[pid] = worker
        poller = self.server.poller
        poller.add(worker.pidfd, lambda: self._exited(worker))
        poller.add(report_r, lambda: self._on_report(worker))
        for fd in (out_r, err_r):
            poller.add(fd, self._reader(worker, fd))
        return worker

    def prestart(self) -> None:
        """Start the pool (done at server start when task modules are configured): a
        worker a slot, or, when async tasks share workers, enough for the slots at
        ``async_concurrency`` a worker (more start when plain tasks need them)."""
        ahead = -(-self.size // max(1, self.concurrency))
        while len(self.workers) < ahead and self.failed is None:
            try:
                self._spawn()
            except OSError as exc:
                log.error("cannot start a worker: %s", exc)
                return

    def _free(self) -> Worker | None:
        for worker in self.workers.values():
            if worker.run is None and not worker.leaving and not worker.shared:
                return worker
        if self.failed is not None and time.monotonic() < self.retry_at:
            return None
        self.failed = None
        return self._spawn()

    def close(self) -> None:
        """Let every worker go (they also die with the server)."""
        for worker in list(self.workers.values()):
            self._forget(worker, kill=True)

    def kill_all(self) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)

    # -- runs ---------------------------------------------------------------------------------

    def start(self, claim: Claim) -> FunctionRun | Outcome:
        """Send ``claim`` to a free worker; an outcome if none can be had."""
        if claim.run_as is not None:
            return Outcome(claim.task_id, claim.epoch, Status.FAILED, Reason.SPAWN,
                           error="function tasks cannot run as another user (tenant run_as)")
        try:
            worker = self._room() if self._shares(claim) else None
            worker = worker or self._free()
        except OSError as exc:
            spawner = self.server.spawner
            spawner.starved = spawner.starved or exc.errno in (errno.EMFILE, errno.ENFILE)
            return Outcome(claim.task_id, claim.epoch, Status.FAILED, Reason.SPAWN,
                           error=f"cannot start a worker: {exc}")
        if worker is None:
            return Outcome(claim.task_id, claim.epoch, Status.FAILED, Reason.SPAWN,
                           error=f"no worker could start: {self.failed}")
        if self._shares(claim):
            return self._start_shared(claim, worker)
        deadline = time.time() + claim.timeout if claim.timeout else None
        job: dict[str, Any] = {"task": claim.task_id, "attempt": claim.epoch,
                               "function": claim.function, "kwargs": claim.kwargs,
                               "deadline": deadline}
        job.update(self._status_file(claim))
        if claim.limits is not None:  # applied by the worker, which leaves after the task
            job["limits"] = claim.limits.to_json()
        message = {"run": job}
        spawner = self.server.spawner
        errors = spawner.stderr_buffer(claim)
        run = FunctionRun(claim, worker.pid, -1, worker.pid_start, {
            worker.out: spawner.stdout_buffer(claim), worker.err: errors}, worker=worker,
            watch=errors if isinstance(errors, TailWatch) else None)
        worker.run = run
        worker.outgoing += (json.dumps(message) + "\n").encode()
        self._send(worker)
        return run

    def _shares(self, claim: Claim) -> bool:
        """Whether ``claim`` runs beside other async tasks (a task with limits: alone)."""
        return (self.concurrency > 1 and claim.function in self.async_names
                and claim.limits is None)

    def _room(self) -> Worker | None:
        """A worker running async tasks with room for one more, the busiest first."""
        fits = [w for w in self.workers.values()
                if w.run is None and not w.leaving and 0 < len(w.shared) < self.concurrency]
        return max(fits, key=lambda w: len(w.shared)) if fits else None

    def _start_shared(self, claim: Claim, worker: Worker) -> FunctionRun:
        from .sharedruns import STDERR, STDOUT, SharedRun

        spawner = self.server.spawner
        run = SharedRun(claim, worker.pid, -1, worker.pid_start, {
            STDOUT: spawner.stdout_buffer(claim), STDERR: spawner.stderr_buffer(claim)},
            worker=worker, tell=lambda message: self._tell(worker, message))
        worker.shared[(claim.task_id, claim.epoch)] = run
        self._tell(worker, {"run": {"task": claim.task_id, "attempt": claim.epoch,
                                    "function": claim.function, "kwargs": claim.kwargs,
                                    "shared": True, **self._status_file(claim)}})
        return run

    def _status_file(self, claim: Claim) -> dict[str, str]:
        """The status file a function task is told of (ctx.status_file; its environment
        while it runs alone), and the extra variable name it goes under too."""
        if claim.status_file is None:
            return {}
        told = {"status_file": claim.status_file}
        if self.server.spawner.status_env:
            told["status_file_env"] = self.server.spawner.status_env.decode()
        return told

    def _tell(self, worker: Worker, message: dict[str, Any]) -> None:
        worker.outgoing += (json.dumps(message) + "\n").encode()
        self._send(worker)

    def _send(self, worker: Worker) -> None:
        """Write what fits of the worker's messages without blocking (a big kwargs waits
        for the worker to read, say while it still imports)."""
        try:
            while worker.outgoing:
                n = os.write(worker.control, worker.outgoing)
                del worker.outgoing[:n]
        except BlockingIOError:
            if worker.control not in self.server.poller:
                self.server.poller.add(worker.control, lambda: self._send(worker), write=True)
            return
        except OSError:  # it died meanwhile: its exit handler ends the run
            worker.outgoing.clear()
        if worker.control in self.server.poller:
            self.server.poller.remove(worker.control)

    def _reader(self, worker: Worker, fd: int) -> Any:
        def on_readable() -> None:
            run = worker.run
            if run is not None and fd in run.streams:
                self.server._read(run, fd)
            else:  # between tasks (a stray thread printing): nobody's output
                with contextlib.suppress(BlockingIOError):
                    if not os.read(fd, 65536):
                        self.server.poller.remove(fd)

        return on_readable

    def _drain(self, run: FunctionRun) -> None:
        """Take every byte in the worker's pipes for ``run``, then detach them from it."""
        for fd in list(run.streams):
            while fd in run.streams and self.server._read(run, fd):
                pass
        for fd in list(run.streams):
            buf = run.streams.pop(fd)
            if buf.dirty:
                self.server.closed.append(buf)

    def _on_report(self, worker: Worker) -> None:
        try:
            data = os.read(worker.report, 65536)
        except BlockingIOError:
            return
        if not data:
            self.server.poller.remove(worker.report)
            return
        worker.pending += data
        *lines, rest = bytes(worker.pending).split(b"\n")
        worker.pending = bytearray(rest)
        for line in lines:
            self._message(worker, json.loads(line))

    def _message(self, worker: Worker, message: dict[str, Any]) -> None:
        if "out" in message:
            self._shared_output(worker, message)
        elif "ready" in message:
            worker.ready = True
            self.failed = None
            self.async_names.update(str(name) for name in message.get("async") or ())
        elif "failed" in message:
            self.failed = str(message["failed"])
            self.retry_at = time.monotonic() + RESTART_PAUSE
            worker.leaving = True
            log.error("a worker could not start: %s", self.failed)
        elif "done" in message and (message["done"], message["attempt"]) in worker.shared:
            ended = worker.shared.pop((message["done"], message["attempt"]))
            self._detach(ended)
            ended.report = message
            ended.returncode = 0
            worker.leaving = worker.leaving or bool(message.get("recycle"))
            self.server._maybe_done(ended)
        elif "done" in message:
            run = worker.run
            if run is None or (run.task_id, run.epoch) != (message["done"], message["attempt"]):
                log.error("worker %d reported a task it does not run: %s", worker.pid, message)
                return
            self._drain(run)
            run.report = message
            run.returncode = 0
            worker.run = None
            worker.leaving = bool(message.get("recycle"))
            self.server._maybe_done(run)

    def _shared_output(self, worker: Worker, message: dict[str, Any]) -> None:
        from .sharedruns import output_of

        run = worker.shared.get((int(message["out"]), int(message.get("attempt", -1))))
        if run is None:
            return  # a task that ended meanwhile: nobody's
        key, data = output_of(message)
        buf = run.streams.get(key)
        if buf is not None:
            self.server.feed(buf, data)

    def _detach(self, run: FunctionRun) -> None:
        """Take a shared run's streams off it (the bytes not stored yet are kept)."""
        for key in list(run.streams):
            buf = run.streams.pop(key)
            if buf.dirty:
                self.server.closed.append(buf)

    def _exited(self, worker: Worker) -> None:
        """The worker's process ended: reap it; its run (if any) ends with it."""
        _, status = os.waitpid(worker.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # what it started dies with it
        run = worker.run
        if run is not None:
            for fd in list(run.streams):  # its pipes are at EOF now (or held by strays)
                while fd in run.streams and self.server._read(run, fd):
                    pass
            self._drain(run)
            run.returncode = code
            run.exited_at = time.monotonic()
            worker.run = None
            self.server._maybe_done(run)
        elif not worker.leaving and code != 0 and not worker.shared:
            log.warning("idle worker %d exited with %d", worker.pid, code)
        for shared in worker.shared.values():  # every async task it ran ends with it
            self._detach(shared)
            shared.returncode = code
            shared.exited_at = time.monotonic()
            self.server._maybe_done(shared)
        worker.shared.clear()
        self._forget(worker, kill=False)
        if not self.server.stopping and self.failed is None and len(self.workers) < self.size:
            with contextlib.suppress(OSError):
                self._spawn()  # keep the pool warm

    def _forget(self, worker: Worker, *, kill: bool) -> None:
        poller = self.server.poller
        for fd in (worker.pidfd, worker.report, worker.out, worker.err, worker.control):
            poller.remove(fd)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
        for fd in (worker.pidfd, worker.control, worker.report, worker.out, worker.err):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.workers.pop(worker.pid, None)

