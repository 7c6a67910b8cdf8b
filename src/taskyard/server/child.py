"""One attempt's process: spawned in its own process group, its pipes drained
without ever blocking it, signalled only through its group while its leader is
unreaped (so the group id cannot have been reused)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field

from ..lifecycle import Reason, Status
from ..store.base import Claim, Outcome
from .cgroups import CgroupEnd, TaskCgroup
from .messages import MessageBuffer
from .output import StreamBuffer
from .rlimits import TailWatch, judge

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1024 * 1024
PIPE_MIN = 65536  #: the default pipe capacity on Linux
READ_SIZE = 1024 * 1024
Capture = StreamBuffer | MessageBuffer  #: what the loop reads a pipe into


@dataclass(eq=False)
class Child:
    claim: Claim
    pid: int
    pidfd: int
    pid_start: int | None
    streams: dict[int, Capture]  #: read fd -> its buffer
    stdin_fd: int | None = None
    stdin_buf: bytearray = field(default_factory=bytearray)
    stdin_eof: bool = False  #: close stdin once stdin_buf is written
    returncode: int | None = None
    usage: tuple[float, float, int] | None = None  #: CPU user, system (s); peak RSS (KiB)
    exited_at: float | None = None
    drain_deadline: float | None = None
    stop_reason: Reason | None = None  #: set when a user or a shutdown asked it to stop
    kill_deadline: float | None = None  #: when TERM escalates to KILL
    deadline: float | None = None  #: when it has run past its timeout (monotonic)
    paused: bool = False
    write_ends: list[int] = field(default_factory=list)  #: our copies of the pipes' write ends
    started: float = field(default_factory=time.monotonic)
    watch: TailWatch | None = None  #: the end of its stderr, with a memory limit
    cgroup: TaskCgroup | None = None  #: its memory cgroup, with a memory limit, where made
    cgroup_end: CgroupEnd | None = None  #: what that cgroup said once the leader was reaped

    @property
    def task_id(self) -> int:
        return self.claim.task_id

    @property
    def epoch(self) -> int:
        return self.claim.epoch

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
        _, status, used = os.wait4(self.pid, 0)  # what it used, its waited children's too
        self.returncode = os.waitstatus_to_exitcode(status)
        self.usage = (used.ru_utime, used.ru_stime, used.ru_maxrss)
        if self.cgroup is not None:  # escaped processes are killed, the cgroup removed
            self.cgroup_end = self.cgroup.end()
            if self.cgroup_end.peak_kib is not None:  # all its processes', and true
                self.usage = (used.ru_utime, used.ru_stime, self.cgroup_end.peak_kib)
        self.exited_at = now
        self.drain_deadline = now + drain_grace
        self.kill_deadline = None
        os.close(self.pidfd)
        self.pidfd = -1
        for fd in self.write_ends:
            os.close(fd)
        self.write_ends = []
        self.close_stdin()

    def outcome(self) -> Outcome:
        return self._limited(self._ending())._replace(usage=self.usage)

    def _limited(self, ended: Outcome) -> Outcome:
        """``ended`` as a failure of reason limit if one of its limits stopped it."""
        limits = self.claim.limits
        if limits is None or ended.reason not in (Reason.EXIT, Reason.SIGNAL):
            return ended
        assert self.returncode is not None
        cpu = self.usage[0] + self.usage[1] if self.usage is not None else None
        which = judge(limits, self.returncode, cpu,
                      bytes(self.watch.last) if self.watch is not None else b"",
                      oom_killed=self.cgroup_end is not None and self.cgroup_end.oom_kills > 0)
        return ended if which is None else ended._replace(reason=Reason.LIMIT, error=which)

    def _ending(self) -> Outcome:
        code = self.returncode
        assert code is not None
        if self.stop_reason is not None:
            sig = -code if code < 0 else None
            ended = Status.FAILED if self.stop_reason is Reason.TIMEOUT else Status.STOPPED
            error = (f"ran past its timeout of {self.claim.timeout:g}s"
                     if self.stop_reason is Reason.TIMEOUT and self.claim.timeout else None)
            return Outcome(self.task_id, self.epoch, ended, self.stop_reason,
                           exit_code=code if code >= 0 else None, signal=sig, error=error)
        if code == 0:
            return Outcome(self.task_id, self.epoch, Status.SUCCEEDED, exit_code=0)
        if code < 0:
            return Outcome(self.task_id, self.epoch, Status.FAILED, Reason.SIGNAL, signal=-code,
                           error=f"killed by {_signame(-code)}")
        return Outcome(self.task_id, self.epoch, Status.FAILED, Reason.EXIT, exit_code=code)

    def close_stream(self, fd: int) -> Capture:
        """Stop reading ``fd`` (at EOF, or when giving up on it) and close it."""
        buf = self.streams.pop(fd)
        os.close(fd)
        if isinstance(buf, MessageBuffer):
            buf.at_eof(time.monotonic())
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


# Python ignores SIGPIPE (and SIGXFSZ); an exec keeps ignored signals ignored.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def kill_and_reap(pid: int) -> None:
    """SIGKILL the group of an unreaped child of ours, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
