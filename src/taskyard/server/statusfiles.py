"""Status files, the LongTask convention: with ``status_dir`` set, a file a task, whose
first line is its state (``QUE``, ``RUN``, ``OK``, ``ERR <message>``) and whose next
lines are its start parameters, one a line. A file is replaced atomically (written
beside, then renamed over), and while the task runs the server holds an ``flock`` on
it, so that a program can tell a live task from a dead one the classic way: a
``RUN`` file nobody locks is a task whose server died.

The server owning an attempt writes ``RUN`` (locked) when it starts it and ``OK`` or
``ERR`` when it ends; the server recording a crash writes ``ERR crashed``. What
clients change (a submit, a cancel, a removal) the server holding the cron lease
brings into the files at its heartbeats, from the events. Writing a file never
stops a server: a failure is logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..config import Settings
from ..errors import ConfigError
from ..lifecycle import Reason, Status
from ..statuspath import folder_name, status_path

log = logging.getLogger("taskyard.server")

SWEEP_EVERY = 10.0  #: seconds between looks for files of tasks no longer stored


class Reads(Protocol):
    """The store reads status files follow (``BrowseStore``'s)."""

    def last_event(self) -> int: ...
    def changed_since(self, after: int, limit: int = ...) -> tuple[int, list[tuple[Any, ...]]]: ...
    def waiting_tasks(self) -> list[tuple[Any, ...]]: ...
    def existing(self, ids: list[int]) -> set[int]: ...


class Ending(NamedTuple):
    """What a status file's first line is made of."""

    status: Status
    reason: Reason | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    reported: str | None = None  #: the error the task reported itself, whatever its exit


def first_line(end: Ending) -> str:
    """``QUE``, ``RUN``, ``OK`` or ``ERR <message>``."""
    if end.status in (Status.SCHEDULED, Status.QUEUED):
        return "QUE"
    if end.status in (Status.RUNNING, Status.PAUSED):
        return "RUN"
    if end.status is Status.SUCCEEDED:
        return "OK"
    return "ERR " + _one_line(message(end))


def message(end: Ending) -> str:
    if end.reported:  # kept on the attempt whatever the exit (issue 15)
        return end.reported
    reason = end.reason
    if reason in (Reason.REPORTED, Reason.EXCEPTION, Reason.LIMIT) and end.error:
        return end.error
    if reason is Reason.EXIT:
        return f"exit {end.exit_code}"
    if reason is Reason.SIGNAL and end.signal is not None:
        try:
            return "signal " + signal.Signals(end.signal).name.removeprefix("SIG")
        except ValueError:
            return f"signal {end.signal}"
    if reason is Reason.SPAWN:
        return f"spawn: {end.error or 'could not start'}"
    return reason.value if reason is not None else str(end.status)


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def params(argv: tuple[str, ...] | list[str], function: str | None,
           kwargs: str | dict[str, object] | None) -> list[str]:
    """The start parameters, one a line: argv, or the function and its JSON arguments."""
    if function is not None:
        text = kwargs if isinstance(kwargs, str) else json.dumps(kwargs or {})
        return [function, _one_line(text)]
    return [a.replace("\n", "\\n") for a in argv]


def check_dir(path: str, what: str = "status_dir") -> None:
    """A status directory that cannot be written is a clear error now, not later."""
    probe = Path(path) / f".taskyard-probe-{os.getpid()}"
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be written: {exc.strerror or exc}",
                          field=what) from None


class StatusFiles:
    """The status files this server writes, and the locks it holds on running ones."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.status_dir
        self.queue_dirs: dict[str, str] = {}  #: queues with a status dir of their own
        #: every dir a queue had while this server ran: a task's file is removed from the
        #: others when it is written (one task, one file, whatever dir changed when)
        self.former: dict[str, set[str]] = {}
        self.live: dict[int, tuple[Path, int, list[str]]] = {}  #: task -> (path, lock, params)
        self.after: int | None = None  #: the last event brought into the files
        self.next_sweep = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.root or self.queue_dirs)

    def follow(self, queue_dirs: dict[str, str]) -> None:
        """The queues' own status dirs as the store has them now."""
        self.queue_dirs = queue_dirs
        for queue, folder in queue_dirs.items():
            self.former.setdefault(queue, set()).add(folder)

    def path_for(self, task_id: int, queue: str) -> Path | None:
        """Where a file goes now (an attempt's own is fixed at its claim)."""
        found = status_path(task_id, queue, self.queue_dirs.get(queue), self.root)
        return Path(found) if found else None

    def _elsewhere(self, task_id: int, queue: str, path: Path,
                   recorded: str | None = None) -> None:
        """Remove the task's file from every other place it may have been written (its
        queue's dir was set, changed or cleared since; ``recorded``: where its last
        attempt's was): one task, one file."""
        places = {os.path.join(folder, folder_name(queue), str(task_id))
                  for folder in self.former.get(queue, ())}
        if self.root:
            places.add(os.path.join(self.root, str(task_id)))
        if recorded:
            places.add(recorded)
        places.discard(str(path))
        for other in places:
            with contextlib.suppress(OSError):
                os.unlink(other)

    def _write(self, path: Path, line: str, lines: list[str], lock: bool) -> int | None:
        """Replace ``path`` atomically; with ``lock``, the new file is locked before it
        appears, and the descriptor holding the lock is returned."""
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, "\n".join([line, *lines, ""]).encode("utf-8", "surrogateescape"))
            if lock:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temp, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        if lock:
            return fd
        os.close(fd)
        return None

    def running(self, task_id: int, queue: str, status_file: str, lines: list[str]) -> None:
        """``RUN`` at the attempt's file (fixed at its claim), locked until it ends."""
        path = Path(status_file)
        self._elsewhere(task_id, queue, path)
        try:
            fd = self._write(path, "RUN", lines, lock=True)
        except OSError as exc:
            log.warning("task %d: status file %s not written: %s", task_id, path, exc)
            return
        if fd is not None:
            self.live[task_id] = (path, fd, lines)

    def ended(self, task_id: int, end: Ending) -> None:
        """The attempt this server ran ended (or went back to the queue): its final
        line replaces ``RUN``, and the lock goes."""
        held = self.live.pop(task_id, None)
        if held is None:
            return
        path, fd, lines = held
        try:
            self._write(path, first_line(end), lines, lock=False)
        except OSError as exc:
            log.warning("task %d: status file %s not written: %s", task_id, path, exc)
        finally:
            os.close(fd)

    def abandon(self, task_id: int) -> None:
        """Let go of a running file's lock without writing (the attempt was taken over)."""
        held = self.live.pop(task_id, None)
        if held is not None:
            os.close(held[1])

    def put(self, task_id: int, queue: str, end: Ending, lines: list[str],
            recorded: str | None = None) -> None:
        """Bring a file up to a state this server does not hold the lock for: at
        ``recorded`` (its last attempt's file) when it ended, where a file goes now when
        it waits again; the file goes from wherever else it was."""
        if task_id in self.live:
            return
        waits = end.status in (Status.SCHEDULED, Status.QUEUED)
        path = Path(recorded) if recorded and not waits else self.path_for(task_id, queue)
        self._elsewhere(task_id, queue, path or Path(), recorded)  # none now: none at all
        if path is None:
            return
        try:
            self._write(path, first_line(end), lines, lock=False)
        except OSError as exc:
            log.warning("task %d: status file %s not written: %s", task_id, path, exc)

    def remove(self, task_id: int, queue: str) -> None:
        path = self.path_for(task_id, queue)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    # -- what clients changed: brought in by the server holding the cron lease -------------

    def sync(self, store: Reads, now: float) -> None:
        """Files of tasks submitted, cancelled or ended since the last look (from the
        events), and, now and then, no file left of a task that was removed."""
        if self.after is None:  # first look: the tasks waiting now, then what comes
            self.after = store.last_event()
            for task_id, queue, argv, function, kwargs in store.waiting_tasks():
                self.put(task_id, queue, Ending(Status.QUEUED),
                         params(json.loads(argv), function, kwargs))
        while True:
            self.after, changed = store.changed_since(self.after)
            for row in changed:
                (task_id, queue, status, reason, code, sig, error, argv, function, kwargs,
                 reported, recorded) = row
                end = Ending(Status(status), Reason(reason) if reason else None, code, sig,
                             error, reported if status == Status.FAILED.value else None)
                if end.status not in (Status.RUNNING, Status.PAUSED):  # the owner's
                    self.put(task_id, queue, end, params(json.loads(argv), function, kwargs),
                             recorded)
            if not changed:
                break
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_EVERY
            self._sweep(store)

    def _sweep(self, store: Reads) -> None:
        """Remove the files of tasks no longer stored (removed, pruned)."""
        dirs = ([Path(self.root)] if self.root else []) + [
            Path(d) / folder_name(q) for q, seen in self.former.items() for d in seen]
        for folder in dirs:
            try:
                names = [e.name for e in os.scandir(folder) if e.name.isdigit()]
            except OSError:
                continue
            ids = sorted(int(n) for n in names)
            kept = store.existing(ids)
            for task_id in ids:
                if task_id not in kept and task_id not in self.live:
                    with contextlib.suppress(OSError):
                        (folder / str(task_id)).unlink()

    def close(self) -> None:
        for _, fd, _ in self.live.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.live.clear()

