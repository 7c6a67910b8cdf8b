"""Where a task's status file is: DIR/<queue>/<task id> when its queue has a status dir
of its own, else STATUS_DIR/<task id> (the server's ``status_dir``), else nowhere.

An attempt's path is fixed when it is claimed and kept on the attempt (so every client,
which cannot see the server's environment, shows the same path, and a queue's dir
changed while it runs moves nothing). The server writes the files
(:mod:`taskyard.server.statusfiles`); this module only names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .model import Attempt, Task


def folder_name(queue: str) -> str:
    """The queue's folder under its status dir: its name, with ``/`` written ``%2F``
    (``team/a`` is a fine queue name, but not a path), and ``.`` or ``..`` (refused as
    queue names since; one stored before) quoted too, so that no name leads a file
    out of its directory. Two names may share a folder (``a/b`` and ``a%2Fb``):
    files are named by task id, which no two tasks share."""
    if queue in (".", ".."):
        return queue.replace(".", "%2E")
    return queue.replace("/", "%2F")


def status_path(task_id: int, queue: str, queue_dir: str | None, root: str) -> str | None:
    """The file of task ``task_id`` of ``queue``: under the queue's own dir, else the
    server's ``root`` (``""``: none)."""
    if queue_dir:
        return os.path.join(queue_dir, folder_name(queue), str(task_id))
    return os.path.join(root, str(task_id)) if root else None


def shown_path(task: Task, attempts: Sequence[Attempt], queue_dirs: Mapping[str, str],
               root: str) -> str | None:
    """The path a client shows: the one its latest attempt's server used; before a first
    start (or for a tracked task, which no server starts), where it is as far as this
    client can tell (its queue's dir, else the client's own ``status_dir``)."""
    latest = max(attempts, key=lambda a: a.epoch, default=None)
    if latest is not None and latest.status_file is not None:
        return latest.status_file
    return status_path(task.id, task.queue, queue_dirs.get(task.queue), root)
