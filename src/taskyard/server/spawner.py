"""Starting an attempt's process: ``posix_spawn`` in a new process group (fork + exec
when it has limits, see ``rlimits.py``), its pipes, stdin, ``--fd`` data and
environment; a task run as another user goes through a tiny interpreter that drops
privileges first."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import pwd
import sys

from ..lifecycle import Reason, Status
from ..limits import Limits
from ..messages import DEFAULT_TAIL
from ..store.base import Claim, Outcome
from ..store.hooks import HOOK_QUEUE, REPORTED_KEYS
from ..validate import FD_RANGE
from . import rlimits
from .cgroups import MemoryCgroups, TaskCgroup
from .child import _DEFAULT_SIGNALS, Capture, Child, kill_and_reap
from .messages import FD_ENV, MessageBuffer
from .output import StreamBuffer
from .rlimits import TailWatch

log = logging.getLogger("taskyard.server")


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
        #: where attempts with a memory limit get a cgroup (set by the server at start)
        self.cgroups = MemoryCgroups()

    def spawn(self, claim: Claim) -> Child | Outcome:
        """Start ``claim`` in a new process group. An OS error (no such program, too many
        open files...) is its spawn failure and leaves nothing open or running."""
        opened: list[int] = []
        pid = None
        cgroup: TaskCgroup | None = None
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
            pid, cgroup = self._start(claim, stdin, out_w, err_w, extra)
            pidfd = self._pidfd(pid)
        except (OSError, ValueError, TypeError) as exc:
            # OSError: no such program, too many open files... ValueError, TypeError: a
            # stored value the OS cannot take (validation keeps them out; a store written
            # by other means must still fail only its task, never stop the server).
            if pid is not None:  # started but cannot be watched: end it (still unreaped,
                kill_and_reap(pid)  # so its group id is certainly its own)
            if cgroup is not None:
                self.cgroups.discard(cgroup)
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
                     watch=errors if isinstance(errors, TailWatch) else None, cgroup=cgroup)

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
               extra: list[tuple[int, int]]) -> tuple[int, TaskCgroup | None]:
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
            return self._start_limited(claim, claim.limits, path, argv, env, dups)
        try:
            return os.posix_spawn(path, argv, env, file_actions=actions, setpgroup=0,
                                  setsigdef=_DEFAULT_SIGNALS, setsigmask=()), None
        except FileNotFoundError:
            if self._paths.pop((argv[0], env.get(b"PATH") or b""), None) is None:
                raise
            path = self._resolve(argv[0], env.get(b"PATH"))
            return os.posix_spawn(path, argv, env, file_actions=actions, setpgroup=0,
                                  setsigdef=_DEFAULT_SIGNALS, setsigmask=()), None

    def _start_limited(self, claim: Claim, limits: Limits, path: str, argv: list[str],
                       env: dict[bytes, bytes], dups: list[tuple[int, int]],
                       ) -> tuple[int, TaskCgroup | None]:
        """fork + exec with the limits set between (rlimits.py); a memory limit in a
        cgroup of the attempt's own where one can be made (cgroups.py)."""
        cgroup = (self.cgroups.make(claim.task_id, claim.epoch, limits.memory)
                  if limits.memory is not None else None)
        try:
            pid, joined = rlimits.spawn(path, argv, env, dups, _DEFAULT_SIGNALS, limits,
                                        cgroup.procs_fd if cgroup is not None else None)
        except BaseException:
            if cgroup is not None:
                self.cgroups.discard(cgroup)
            raise
        if cgroup is None:
            return pid, None
        if not joined:
            log.warning("task %d attempt %d could not join its memory cgroup %s; its memory"
                        " limit is RLIMIT_AS per process instead", claim.task_id,
                        claim.epoch, cgroup.path)
            self.cgroups.discard(cgroup)
            return pid, None
        self.cgroups.spawned(cgroup)
        return pid, cgroup

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

def _free_number(extra: list[tuple[int, int]]) -> int:
    """The lowest descriptor number past 2 that none of the task's --fd takes."""
    taken = {number for _, number in extra}
    return next(n for n in range(3, 4 + len(taken)) if n not in taken)


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
