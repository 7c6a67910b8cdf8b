"""Resource limits applied to a task's processes, and telling whether one stopped it.

A command task with limits is started by ``fork`` + ``execve`` instead of
``posix_spawn``: the child sets its rlimits between the two, so the program never
runs a moment without them (``posix_spawn`` has no hook for that, and a
``prlimit`` after it would race the program). Tasks without limits keep
``posix_spawn`` and pay nothing. Between ``fork`` and ``execve`` the child makes
only system calls (dup2, setpgid, sigaction, setrlimit, exec) and touches no lock
another thread of the server could hold (the SQLite checkpoint thread).

- memory: a cgroup of the attempt's own where the server has them (``cgroups.py``):
  the child joins it before its exec, so every process of the task counts, together,
  and the kernel's OOM killer ends one past the limit (``judge`` is told). Else
  ``RLIMIT_AS`` (address space): an allocation past it fails. The program
  decides what follows (Python raises MemoryError, C's malloc returns NULL), so the
  server calls such an ending the limit's when the program failed and the end of its
  stderr tells of a failed allocation. Each process of the task has this limit of
  its own; it does not add up over the task's children.
- cpu: ``RLIMIT_CPU``: SIGXCPU at the limit, SIGKILL 2 s of CPU later.
- files: ``RLIMIT_NOFILE``: an open past it fails (EMFILE); the limit's ending when
  the program failed saying "Too many open files" last.
- procs: ``RLIMIT_NPROC`` (processes of the task's *user*; not enforced for root). A
  fork past it fails with EAGAIN, which says nothing certain: its ending stays exit.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import resource
import signal
import warnings
from collections.abc import Sequence

from ..limits import Limits, size_text
from .output import StreamBuffer

CPU_GRACE = 2  #: seconds of CPU between SIGXCPU (the limit) and SIGKILL
TAIL = 4096  #: bytes of stderr kept to tell a failed allocation

#: what programs print when an allocation failed (Python, glibc/strerror, C++, Rust, Go)
_ALLOC_FAILED = re.compile(
    rb"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|"
    rb"memory allocation of \d+ bytes failed|failed to allocate|allocation failed",
    re.IGNORECASE)


def rlimits(limits: Limits, cpu_used: float = 0.0) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for ``limits``; the CPU limit counted from ``cpu_used``
    (a worker's CPU time so far)."""
    found = []
    if limits.memory is not None:
        found.append((resource.RLIMIT_AS, limits.memory, limits.memory))
    if limits.cpu is not None:
        soft = math.ceil(cpu_used + limits.cpu)
        found.append((resource.RLIMIT_CPU, soft, soft + CPU_GRACE))
    if limits.files is not None:
        found.append((resource.RLIMIT_NOFILE, limits.files, limits.files))
    if limits.procs is not None:
        found.append((resource.RLIMIT_NPROC, limits.procs, limits.procs))
    return found


def apply(limits: Limits, cpu_used: float = 0.0) -> None:
    """Set ``limits`` on this process (never above a hard limit it already has)."""
    for kind, soft, hard in rlimits(limits, cpu_used):
        _, old_hard = resource.getrlimit(kind)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(kind, (soft, hard))


def spawn(path: str, argv: Sequence[str], env: dict[bytes, bytes],
          dups: Sequence[tuple[int, int]], reset: Sequence[int], limits: Limits,
          cgroup_procs: int | None = None) -> tuple[int, bool]:
    """Start ``path`` like ``posix_spawn(..., setpgroup=0, setsigdef=reset,
    setsigmask=())`` with ``dups`` as (source, target) descriptors, its ``limits``
    set before the exec. With ``cgroup_procs`` (an open ``cgroup.procs``) the child
    first joins that cgroup, which then holds its memory limit instead of RLIMIT_AS.
    Returns (pid, whether it joined the cgroup: if it could not, it has RLIMIT_AS). An
    exec that fails raises its OSError here, as posix_spawn."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        with warnings.catch_warnings():  # 3.12+ warns of fork with threads: see above
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(report_r)
        os.close(report_w)
        raise
    if pid == 0:  # pragma: no cover - the child, until its exec
        _child(report_w, path, argv, env, dups, reset, limits, cgroup_procs)
    os.close(report_w)
    try:
        failed = _read_all(report_r)
    finally:
        os.close(report_r)
    joined = cgroup_procs is not None and not failed.startswith(_NOT_JOINED)
    failed = failed.removeprefix(_NOT_JOINED)
    if failed:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        number = int(failed.split(b":")[0] or errno.EINVAL)
        raise OSError(number, os.strerror(number), path)
    return pid, joined


_NOT_JOINED = b"!"  #: the child's word that it could not join its cgroup


def _child(report: int, path: str, argv: Sequence[str], env: dict[bytes, bytes],
           dups: Sequence[tuple[int, int]], reset: Sequence[int], limits: Limits,
           cgroup_procs: int | None) -> None:  # pragma: no cover - the forked child
    code = errno.EINVAL
    try:
        if cgroup_procs is not None:
            try:
                os.write(cgroup_procs, b"0")  # "0": the writer; before any page of its own
                limits = limits._replace(memory=None)  # the cgroup holds it, for all
            except OSError:
                os.write(report, _NOT_JOINED)
        os.setpgid(0, 0)
        for source, target in dups:
            os.dup2(source, target)  # the copy is inheritable (no CLOEXEC)
        for sig in reset:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        apply(limits)
        os.execve(path, list(argv), env)
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:  # nothing may run on in a forked copy of the server
        pass
    with contextlib.suppress(BaseException):
        os.write(report, f"{code}:".encode())
    os._exit(127)


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            return data
        data += chunk


def stderr_buffer(task_id: int, epoch: int, limits: Limits | None, head: int,
                  tail: int) -> StreamBuffer:
    """A task's stderr buffer: one that keeps the end too (to tell what stopped it)
    with a memory or files limit."""
    if limits is not None and (limits.memory is not None or limits.files is not None):
        return TailWatch(task_id, epoch, "stderr", head, tail)
    return StreamBuffer(task_id, epoch, "stderr", head, tail)


class TailWatch(StreamBuffer):
    """A stream buffer that also keeps the last bytes read (the stderr of a task with
    a memory or files limit, to tell a failed allocation or open); other tasks' buffers
    do not pay."""

    def __init__(self, task_id: int, epoch: int, stream: str, head: int, tail: int) -> None:
        super().__init__(task_id, epoch, stream, head, tail)
        self.last = bytearray()

    def feed(self, data: bytes, now: float = 0.0) -> None:
        super().feed(data, now)
        self.last += data[-TAIL:]
        del self.last[:-TAIL]


def judge(limits: Limits, code: int, cpu_used: float | None, stderr_end: bytes,
          oom_killed: bool = False) -> str | None:
    """Which limit stopped a task that failed with ``code`` (negative: a signal), as
    its error text, or None if none did. ``oom_killed``: the OOM killer ended a process
    in the task's memory cgroup (the leader, or a child whose end failed the leader)."""
    memory = f"memory limit {size_text(limits.memory)}" if limits.memory is not None else None
    if memory is not None and code != 0 and oom_killed:
        return memory
    if limits.cpu is not None and _cpu_ended(code, cpu_used, limits.cpu):
        return f"cpu limit {limits.cpu}s"
    if memory is not None and code != 0 and _ALLOC_FAILED.search(stderr_end):
        return memory
    if limits.files is not None and code != 0 and b"Too many open files" in stderr_end:
        return f"files limit {limits.files}"
    return None


def _cpu_ended(code: int, cpu_used: float | None, limit: int) -> bool:
    """Killed by SIGXCPU (only RLIMIT_CPU sends it), or by SIGKILL (or a shell saying
    either of these of its child: 128 + signal) having used its CPU time."""
    sig = -code if code < 0 else code - 128 if code > 128 else 0
    if sig == signal.SIGXCPU and code < 0:
        return True
    used_up = cpu_used is not None and cpu_used >= limit - 0.05
    return sig in (signal.SIGXCPU, signal.SIGKILL) and used_up
