"""One attempt's process: spawned in its own process group, its pipes drained
without ever blocking it, signalled only through its group while its leader is
unreaped (so the group id cannot have been reused)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
from dataclasses import dataclass, field

from ..lifecycle import Reason, Status
from ..store.base import Claim, Outcome
from . import procs
from .output import StreamBuffer

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1024 * 1024
READ_SIZE = 1024 * 1024


@dataclass(eq=False)
class Child:
    claim: Claim
    popen: subprocess.Popen[bytes]
    pidfd: int
    pid_start: int | None
    streams: dict[int, StreamBuffer]  #: read fd -> its buffer
    stdin_fd: int | None = None
    stdin_buf: bytearray = field(default_factory=bytearray)
    stdin_eof: bool = False  #: close stdin once stdin_buf is written
    returncode: int | None = None
    exited_at: float | None = None
    drain_deadline: float | None = None
    stop_reason: Reason | None = None  #: set when a user or a shutdown asked it to stop
    kill_deadline: float | None = None  #: when TERM escalates to KILL
    paused: bool = False

    @property
    def task_id(self) -> int:
        return self.claim.task_id

    @property
    def epoch(self) -> int:
        return self.claim.epoch

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def done(self) -> bool:
        """Leader reaped and every pipe at EOF (or given up on)."""
        return self.returncode is not None and not self.streams

    # -- signals (only while the leader is unreaped) ----------------------------

    def signal_group(self, sig: int) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def kill(self, sig: int, reason: Reason, *, escalate_at: float | None) -> None:
        """Send ``sig`` to the group; continue it if paused so the signal is delivered."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.signal_group(sig)
        if self.paused or sig not in (signal.SIGKILL, signal.SIGCONT):
            self.signal_group(signal.SIGCONT)
            self.paused = False
        if escalate_at is not None and sig != signal.SIGKILL:
            self.kill_deadline = escalate_at

    # -- exit -----------------------------------------------------------------

    def reap(self, now: float, drain_grace: float) -> None:
        """The leader exited (its pidfd is readable). Kill what is left of its group
        before reaping, while the group id is still certainly ours, then reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.returncode = self.popen.wait()
        self.exited_at = now
        self.drain_deadline = now + drain_grace
        self.kill_deadline = None
        os.close(self.pidfd)
        self.pidfd = -1
        self.close_stdin()

    def outcome(self) -> Outcome:
        code = self.returncode
        assert code is not None
        if self.stop_reason is not None:
            sig = -code if code < 0 else None
            return Outcome(self.task_id, self.epoch, Status.STOPPED, self.stop_reason,
                           exit_code=code if code >= 0 else None, signal=sig)
        if code == 0:
            return Outcome(self.task_id, self.epoch, Status.SUCCEEDED)
        if code < 0:
            return Outcome(self.task_id, self.epoch, Status.FAILED, Reason.SIGNAL, signal=-code,
                           error=f"killed by {_signame(-code)}")
        return Outcome(self.task_id, self.epoch, Status.FAILED, Reason.EXIT, exit_code=code)

    def close_stream(self, fd: int) -> StreamBuffer:
        buf = self.streams.pop(fd)
        os.close(fd)
        return buf

    def close_stdin(self) -> None:
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None
        self.stdin_buf.clear()

    def write_stdin(self) -> None:
        """Write what fits without blocking; close once everything asked for is written."""
        if self.stdin_fd is None:
            return
        try:
            while self.stdin_buf:
                n = os.write(self.stdin_fd, self.stdin_buf[:65536])
                del self.stdin_buf[:n]
        except BlockingIOError:
            return
        except OSError as exc:  # EPIPE: the child closed its stdin
            if exc.errno != errno.EPIPE:
                raise
            self.close_stdin()
            return
        if self.stdin_eof:
            self.close_stdin()


def _signame(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stdin_for(claim: Claim) -> tuple[int, int | None]:
    """(fd for the child, fd the server keeps) for the task's stdin."""
    if claim.stdin_open:
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(w, False)
        return r, w
    if claim.stdin:
        fd = os.memfd_create("taskyard-stdin", os.MFD_CLOEXEC)
        os.write(fd, claim.stdin)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd, None
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None


def spawn(claim: Claim, base_env: dict[str, str], head: int, tail: int) -> Child | Outcome:
    """Start ``claim`` in a new process group; an OS error is the task's spawn failure."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    child_stdin, keep_stdin = _stdin_for(claim)
    env = dict(base_env)
    env.update(claim.env)
    env["TASKYARD_TASK_ID"] = str(claim.task_id)
    env["TASKYARD_ATTEMPT"] = str(claim.epoch)
    env["TASKYARD_RUN"] = claim.run_tag
    try:
        popen = subprocess.Popen(  # noqa: S603 - argv as given, never a shell
            claim.argv, stdin=child_stdin, stdout=out_w, stderr=err_w, cwd=claim.cwd, env=env,
            process_group=0, close_fds=True,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        for fd in (out_r, out_w, err_r, err_w, child_stdin, keep_stdin):
            if fd is not None:
                os.close(fd)
        return Outcome(claim.task_id, claim.epoch, Status.FAILED, Reason.SPAWN,
                       error=_spawn_error(exc, claim))
    for fd in (out_w, err_w, child_stdin):
        os.close(fd)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    with contextlib.suppress(OSError):
        fcntl.fcntl(out_r, F_SETPIPE_SZ, PIPE_SIZE)
    pidfd = os.pidfd_open(popen.pid)
    streams = {out_r: StreamBuffer(claim.task_id, claim.epoch, "stdout", head, tail),
               err_r: StreamBuffer(claim.task_id, claim.epoch, "stderr", head, tail)}
    return Child(claim, popen, pidfd, procs.start_time(popen.pid), streams, stdin_fd=keep_stdin)


def _spawn_error(exc: BaseException, claim: Claim) -> str:
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        target = exc.filename if exc.filename is not None else claim.argv[0]
        if exc.errno == errno.E2BIG:
            return f"{what} (argument list too long)"
        return f"{what}: {target}"
    return str(exc)
