"""Whether this process is one of a running task's: ``taskyard report`` takes a task's
own verdict only from the task's processes, not from a process that copied its
``TASKYARD_TASK_ID`` and ``TASKYARD_ATTEMPT``.

The server starts each attempt's first process itself (so that process's parent is
the server's pid, which the store has), in a process group of its own, with
``TASKYARD_RUN`` = ``<server>.<task>.<attempt>`` in its environment. This process is
the task's when it, one of its ancestors, or the leader of its process group is such a
process of the attempt's server: on the server's host (host name and boot id), a
child of the server's pid, whose starting environment names this attempt. No process
but the server can make the server its parent, so copying variables is not enough.

It is a check against a mistake (a script run by hand with a task's variables), not
a security boundary: a user who can write the store can change any task anyway.
"""

from __future__ import annotations

import os

from ..errors import UserError
from ..server import procs
from ..store.base import ClientStore


def check_inside(store: ClientStore, task_id: int, epoch: int, verb: str) -> None:
    """Raise UserError unless this process is one of attempt ``epoch`` of ``task_id``'s.
    An attempt that is not running (or not there) is left to the write, which says
    what it is (fenced off, no such task)."""
    attempt = next((a for a in store.attempts(task_id) if a.epoch == epoch), None)
    if attempt is None or attempt.finished_at is not None or attempt.owner is None:
        return
    server = next((i for i in store.instances() if i.id == attempt.owner), None)
    if server is None:
        raise UserError(f"taskyard {verb}: task {task_id} attempt {epoch} has no running"
                        " server, so no process of it can report", field="task")
    if (server.host, server.boot_id) != (procs.hostname(), procs.boot_id()):
        raise UserError(f"taskyard {verb}: task {task_id} attempt {epoch} runs on"
                        f" {server.host}, not here: only its own processes report",
                        field="task")
    tag = f"{attempt.owner}.{task_id}.{epoch}"
    if not any(_started_by(pid, server.pid, tag) for pid in _lineage()):
        raise UserError(f"taskyard {verb}: this process is not one of task {task_id}'s"
                        f" (attempt {epoch}); only the task's own processes report its"
                        " outcome", field="task")


def _lineage() -> list[int]:
    """This process, its ancestors, and the leader of its process group."""
    found: list[int] = []
    pid = os.getpid()
    while pid > 1 and pid not in found and len(found) < 256:
        found.append(pid)
        pid = _parent(pid)
    found.append(os.getpgid(0))
    return found


def _parent(pid: int) -> int:
    """Field 4 of /proc/PID/stat (0 when the process is gone)."""
    try:
        raw = (procs.PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return 0
    try:
        return int(raw[raw.rfind(b")") + 2:].split()[1])
    except (IndexError, ValueError):
        return 0


def _started_by(pid: int, server_pid: int, tag: str) -> bool:
    """Whether ``pid`` is the first process of the attempt tagged ``tag``: a child of
    the server whose starting environment has that tag (a task run as another user
    may keep its environment from us: then its parent alone says it)."""
    if _parent(pid) != server_pid:
        return False
    try:
        environ = (procs.PROC / str(pid) / "environ").read_bytes()
    except PermissionError:
        return True
    except OSError:
        return False
    return f"TASKYARD_RUN={tag}".encode() in environ.split(b"\0")
