"""One attempt's process: spawned in its own process group, its pipes drained
without ever blocking it, signalled only through its group while its leader is
unreaped (so the group id cannot have been reused)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import signal
import sys
import time
from dataclasses import dataclass, field

from ..lifecycle import Reason, Status
from ..messages import DEFAULT_TAIL
from ..store.base import Claim, Outcome
from ..store.hooks import HOOK_QUEUE, REPORTED_KEYS
from ..validate import FD_RANGE
from . import rlimits
from .messages import FD_ENV, MessageBuffer
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
                      bytes(self.watch.last) if self.watch is not None else b"")
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


class Spawner:
    """Starts attempts with ``posix_spawn`` (vfork-like, far cheaper than fork+exec
    through ``subprocess``). The server is single-threaded, so it can ``chdir``
    to a task's directory right before the spawn instead of in the child."""

    def __init__(self, base_env: dict[str, str], head: int, tail: int) -> None:
        self.base_env = {k.encode(): v.encode("utf-8", "surrogateescape")
                         for k, v in base_env.items()}
        self.head, self.tail = head, tail
        self.messages_tail = DEFAULT_TAIL  #: the messages bound of the attempts it starts
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.spare: int | None = None  #: a descriptor held back for the next pidfd
        #: a spawn of the current batch failed for want of file descriptors: the server
        #: gives the rest of the batch back and caps its running tasks (Server.fd_cap)
        self.starved = False
        self._paths: dict[tuple[str, bytes], str] = {}
        #: a task's status file (its claim's) is exported as TASKYARD_STATUS_FILE and, for
        #: old programs, under ``status_env`` too
        self.status_env = b""
        #: the server's own directory (the ``cwd`` setting): where tasks that name none run
        self.cwd = os.getcwd()

    def spawn(self, claim: Claim) -> Child | Outcome:
        """Start ``claim`` in a new process group. An OS error (no such program, too many
        open files...) is its spawn failure and leaves nothing open or running."""
        opened: list[int] = []
        pid = None
        try:
            if self.spare is None:  # see _pidfd
                self.spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            stdin, keep = self._stdin(claim, opened)
            extra = self._fds(claim, opened)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            opened += (out_r, out_w)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            opened += (err_r, err_w)
            msg_r, msg_w = os.pipe2(os.O_CLOEXEC)
            opened += (msg_r, msg_w)
            extra.append((msg_w, _free_number(extra)))
            pid = self._start(claim, stdin, out_w, err_w, extra)
            pidfd = self._pidfd(pid)
        except (OSError, ValueError, TypeError) as exc:
            # OSError: no such program, too many open files... ValueError, TypeError: a
            # stored value the OS cannot take (validation keeps them out; a store written
            # by other means must still fail only its task, never stop the server).
            if pid is not None:  # started but cannot be watched: end it (still unreaped,
                kill_and_reap(pid)  # so its group id is certainly its own)
            for fd in opened:
                os.close(fd)
            if isinstance(exc, OSError):
                self.starved = self.starved or exc.errno in (errno.EMFILE, errno.ENFILE)
            return _failed(claim, exc)
        if stdin != self.devnull:
            os.close(stdin)
        for fd, _ in extra[:-1]:  # the task's --fd memfds (the messages pipe is kept)
            os.close(fd)
        fcntl.fcntl(out_r, fcntl.F_SETFL, os.O_NONBLOCK)  # one call (set_blocking makes two)
        fcntl.fcntl(err_r, fcntl.F_SETFL, os.O_NONBLOCK)
        fcntl.fcntl(msg_r, fcntl.F_SETFL, os.O_NONBLOCK)
        errors = self.stderr_buffer(claim)
        streams: dict[int, Capture] = {
            out_r: self.stdout_buffer(claim), err_r: errors,
            msg_r: MessageBuffer(claim.task_id, claim.epoch, self.messages_tail)}
        # The write ends stay open until the leader is reaped: closing them here, while
        # the child execs and runs on the other CPU, measured ~30x dearer than later.
        return Child(claim, pid, pidfd, None, streams, stdin_fd=keep,
                     write_ends=[out_w, err_w, msg_w],
                     watch=errors if isinstance(errors, TailWatch) else None)

    def bounds(self, claim: Claim) -> tuple[int, int]:
        """The claim's output bounds (resolved at the claim), else this server's."""
        return (self.head if claim.output_head is None else claim.output_head,
                self.tail if claim.output_tail is None else claim.output_tail)

    def stdout_buffer(self, claim: Claim) -> StreamBuffer:
        return StreamBuffer(claim.task_id, claim.epoch, "stdout", *self.bounds(claim))

    def stderr_buffer(self, claim: Claim) -> StreamBuffer:
        return rlimits.stderr_buffer(claim.task_id, claim.epoch, claim.limits,
                                     *self.bounds(claim))

    def _pidfd(self, pid: int) -> int:
        """A pidfd for a child just started. Out of file descriptors, the spare one kept
        for this is given up, so a child that started can always be watched (the spare
        is taken again before the next spawn, which fails cleanly if it cannot be)."""
        try:
            return os.pidfd_open(pid)
        except OSError as exc:
            if exc.errno != errno.EMFILE or self.spare is None:
                raise
        os.close(self.spare)
        self.spare = None
        return os.pidfd_open(pid)

    def _stdin(self, claim: Claim, opened: list[int]) -> tuple[int, int | None]:
        """(fd for the child, fd the server keeps) for the task's stdin; what it opens
        is added to ``opened``."""
        if claim.stdin_open:
            r, w = os.pipe2(os.O_CLOEXEC)
            opened += (r, w)
            os.set_blocking(w, False)
            return r, w
        if claim.stdin:
            fd = os.memfd_create("taskyard-stdin", os.MFD_CLOEXEC)
            opened.append(fd)
            os.write(fd, claim.stdin)
            os.lseek(fd, 0, os.SEEK_SET)
            return fd, None
        return self.devnull, None

    def _fds(self, claim: Claim, opened: list[int]) -> list[tuple[int, int]]:
        """(memfd, descriptor number in the child) for each --fd the task was given."""
        if not claim.fds:
            return []
        import base64
        import json

        found = []
        for number, data in json.loads(claim.fds).items():
            made = os.memfd_create(f"taskyard-fd{number}", os.MFD_CLOEXEC)
            try:
                # Above every descriptor a task may be given: the child's dup2s in turn
                # must never overwrite a source not yet placed.
                fd = fcntl.fcntl(made, fcntl.F_DUPFD_CLOEXEC, FD_RANGE[1] + 1)
            finally:
                os.close(made)
            opened.append(fd)
            os.write(fd, base64.b64decode(data))
            os.lseek(fd, 0, os.SEEK_SET)
            found.append((fd, int(number)))
        return found

    def _start(self, claim: Claim, stdin: int, out: int, err: int,
               extra: list[tuple[int, int]]) -> int:
        env = dict(self.base_env)
        for key, value in claim.env.items():
            env[key.encode()] = value.encode("utf-8", "surrogateescape")
        env[b"TASKYARD_TASK_ID"] = str(claim.task_id).encode()
        env[b"TASKYARD_ATTEMPT"] = str(claim.epoch).encode()
        env[b"TASKYARD_RUN"] = claim.run_tag.encode()
        env[FD_ENV] = str(extra[-1][1]).encode()  # the messages pipe (see spawn)
        if claim.status_file is not None:
            env[b"TASKYARD_STATUS_FILE"] = os.fsencode(claim.status_file)
            if self.status_env:
                env[self.status_env] = os.fsencode(claim.status_file)
        if claim.queue == HOOK_QUEUE:  # a hook speaks of the task it reports on
            for key in REPORTED_KEYS:
                if key in claim.env:
                    env[key.encode()] = claim.env[key].encode("utf-8", "surrogateescape")
        # Every time (not only when it changed): the directory may have been removed
        # or replaced by a new one of the same name since the last task ran there.
        os.chdir(claim.cwd if claim.cwd is not None else self.cwd)
        argv = list(claim.argv)
        path = self._resolve(argv[0], env.get(b"PATH"))
        if claim.run_as is not None:
            path, argv = self._as_user(claim.run_as, path, argv, env)
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out, 1),
                   (os.POSIX_SPAWN_DUP2, err, 2)]
        actions += [(os.POSIX_SPAWN_DUP2, fd, number) for fd, number in extra]
        if claim.limits is not None:  # see rlimits.py: only these pay for a fork
            dups = [(fd, number) for _, fd, number in actions]
            return rlimits.spawn(path, argv, env, dups, _DEFAULT_SIGNALS, claim.limits)
        try:
            return os.posix_spawn(path, argv, env, file_actions=actions, setpgroup=0,
                                  setsigdef=_DEFAULT_SIGNALS, setsigmask=())
        except FileNotFoundError:
            if self._paths.pop((argv[0], env.get(b"PATH") or b""), None) is None:
                raise
            path = self._resolve(argv[0], env.get(b"PATH"))
            return os.posix_spawn(path, argv, env, file_actions=actions, setpgroup=0,
                                  setsigdef=_DEFAULT_SIGNALS, setsigmask=())

    def _as_user(self, user: str, path: str, argv: list[str],
                 env: dict[bytes, bytes]) -> tuple[str, list[str]]:
        """The program and argv that run ``path`` as ``user`` (a tenant's login): a
        tiny isolated interpreter drops to the user's uid, gid and groups, then execs."""
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise PermissionError(errno.EPERM, "no such user to run as", user) from None
        for key, value in ((b"USER", user), (b"LOGNAME", user), (b"HOME", entry.pw_dir)):
            env.setdefault(key, value.encode("utf-8", "surrogateescape"))
        if entry.pw_uid == os.geteuid():
            return path, argv
        if os.geteuid() != 0:
            raise PermissionError(errno.EPERM, "the server is not root, so it cannot run as",
                                  user)
        groups = ",".join(str(g) for g in os.getgrouplist(user, entry.pw_gid))
        return sys.executable, [sys.executable, "-I", "-S", "-c", _RUN_AS, str(entry.pw_uid),
                                str(entry.pw_gid), groups, user, path, *argv]

    def _resolve(self, program: str, search: bytes | None) -> str:
        """Find ``program`` on the task's PATH (not the server's), as execvp would."""
        if "/" in program:
            return program
        key = (program, search or b"")
        found = self._paths.get(key)
        if found is not None:
            return found
        denied = False
        for folder in (search.decode(errors="surrogateescape") if search else os.defpath).split(":"):
            candidate = os.path.join(folder or ".", program)
            if os.path.isfile(candidate):
                if os.access(candidate, os.X_OK):
                    self._paths[key] = candidate
                    return candidate
                denied = True
        if denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


# Runs as root between posix_spawn and the task's exec: nothing but the standard library
# (-I -S), signal dispositions restored, privileges dropped for good, then exec.
_RUN_AS = """\
import os, signal, sys
for s in (signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
uid, gid, groups, user, path = sys.argv[1:6]
os.setgroups([int(g) for g in groups.split(",") if g])
os.setgid(int(gid))
os.setuid(int(uid))
try:
    os.execv(path, sys.argv[6:])
except OSError as exc:
    sys.stderr.write(f"taskyard: cannot run {path} as {user}: {exc.strerror}\\n")
    os._exit(127)
"""

# Python ignores SIGPIPE (and SIGXFSZ); an exec keeps ignored signals ignored.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _free_number(extra: list[tuple[int, int]]) -> int:
    """The lowest descriptor number past 2 that none of the task's --fd takes."""
    taken = {number for _, number in extra}
    return next(n for n in range(3, 4 + len(taken)) if n not in taken)


def kill_and_reap(pid: int) -> None:
    """SIGKILL the group of an unreaped child of ours, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _failed(claim: Claim, exc: Exception) -> Outcome:
    return Outcome(claim.task_id, claim.epoch, Status.FAILED, Reason.SPAWN,
                   error=_spawn_error(exc, claim))


def _spawn_error(exc: Exception, claim: Claim) -> str:
    if not isinstance(exc, OSError):
        return f"cannot start it: {type(exc).__name__}: {exc}"
    what = exc.strerror or str(exc)
    if exc.errno == errno.E2BIG:  # the arguments and environment together are too big
        return what
    target = exc.filename if exc.filename is not None else claim.argv[0]
    return f"{what}: {target}"
