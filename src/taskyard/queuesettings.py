"""A queue's settings, changed all or none: every value given is checked before the
first is written, so a bad one (an unwritable ``--status-dir`` after a good
``--retain``) leaves the queue as it was. ``queue set``, ``PATCH /api/v1/queues/Q`` and
the single ``ops.set_queue_*`` calls all go through :class:`QueueChanges`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from types import EllipsisType

from . import limits, outputbounds, rates, validate
from .errors import InvalidInput
from .limits import Limits
from .rates import Rate
from .store.base import ClientStore as Store


class QueueChanges:
    """Changes to queue ``name``, each checked when it is added and written by
    :meth:`apply`, in the order added."""

    def __init__(self, store: Store, name: str) -> None:
        validate.check_queue(name)
        self.store, self.name = store, name
        self._writes: list[Callable[[], object]] = []
        self._wake = False

    def apply(self) -> None:
        for write in self._writes:
            write()
        if self._wake:
            self.store.wake()

    def parallel(self, parallel: int | None) -> None:
        """Run at most ``parallel`` tasks of the queue at a time (None: no limit)."""
        checked = validate.check_parallel(parallel)
        self._writes.append(lambda: self.store.set_queue_parallel(self.name, checked))
        self._wake = True

    def rate(self, rate: object, field: str = "rate") -> Rate | None:
        """At most N starts per sliding period (``100/1m``); None, ``none`` or ``''``
        takes the rate away. Returns the queue's rate."""
        cleared = rate is None or (isinstance(rate, str)
                                   and rate.strip().lower() in ("", "none"))
        parsed = None if cleared else rates.parse_rate(rate, field)
        self._writes.append(lambda: self.store.set_queue_rate(self.name, parsed))
        self._wake = True
        return parsed

    def status_dir(self, directory: str | None) -> None:
        """Status files of its tasks go to DIRECTORY/<queue>/<task id> (None: to the
        server's status_dir). A directory that cannot be written is refused now."""
        if directory is not None:
            from .server.statusfiles import check_dir
            from .statuspath import folder_name

            directory = os.path.abspath(validate.check_path(directory, "status_dir"))
            check_dir(os.path.join(directory, folder_name(self.name)), "status-dir")
        self._writes.append(lambda: self.store.set_queue_status_dir(self.name, directory))
        self._wake = True

    def hooks(self, *, on_finish: str | None = None, url: str | None = None) -> None:
        """Its own finish hook: ``on_finish`` a JSON argv (``'[]'``: none, not even the
        server's; ``''``: the server's again), ``url`` a webhook URL (``'none'``: none;
        ``''``: the server's again). None leaves a setting as it is."""
        if self.name == "_hooks":
            raise InvalidInput("queue _hooks runs the finish hooks: it has none of its own",
                               field="queue")
        argv: str | None | EllipsisType = ...
        if on_finish is not None:
            argv = (json.dumps(list(validate.parse_hook(on_finish, "on_finish")))
                    if on_finish.strip() else None)
        target: str | None | EllipsisType = ...
        if url is not None:
            target = ("" if url == "none"
                      else (validate.check_hook_url(url, "on_finish_url") or None))
        self._writes.append(lambda: self.store.set_queue_hooks(self.name, on_finish=argv,
                                                               url=target))

    def retention(self, *, retain: str | None = None,
                  retain_count: str | None = None) -> None:
        """Its own retention: ``retain`` an age (``30d``; ``0``: never by age; ``''``: the
        server's again), ``retain_count`` the newest finished tasks it keeps (``0``: no
        count limit; ``''``: the server's). None leaves a setting as it is."""
        age: float | None | EllipsisType = ...
        if retain is not None:
            age = validate.parse_duration(retain, "retain") if retain.strip() else None
        count: int | None | EllipsisType = ...
        if retain_count is not None:
            text = retain_count.strip()
            if text and not (text.isascii() and text.isdigit() and len(text) < 10):
                raise InvalidInput(f"--retain-count must be a whole number, not"
                                   f" {retain_count!r}", field="retain_count")
            count = int(text) if text else None
        self._writes.append(lambda: self.store.set_queue_retention(
            self.name, retain=age, retain_count=count))

    def output(self, *, head: object = ..., tail: object = ...,
               max_tail: int | None = None) -> tuple[int | None, int | None]:
        """The output bounds of its tasks: each given is a size (``1M``, bytes), or
        ``''``/``none``/None for the server's; a task's own win. Returns both."""
        now = list(self.store.queue_output(self.name))
        for index, (value, field) in enumerate(((head, "output_head"),
                                                (tail, "output_tail"))):
            if value is ...:
                continue
            cleared = value is None or str(value).strip().lower() in ("", "none")
            now[index] = None if cleared else outputbounds.parse(value, field)
        outputbounds.check(now[0], now[1], max_tail)
        head_now, tail_now = now[0], now[1]
        self._writes.append(lambda: self.store.set_queue_output(self.name, head_now,
                                                                tail_now))
        return head_now, tail_now

    def limits(self, given: dict[str, object], prefix: str = "") -> Limits:
        """The resource limits of its tasks: each kind given (``memory``, ``cpu``,
        ``files``, ``procs``) is set, or cleared by None, ``none`` or ``''``; the others
        stay. A task's own limits override its queue's. Returns the queue's limits."""
        cleared = {k for k, v in given.items()
                   if v is None or str(v).strip().lower() in ("", "none")}
        changed = limits.parse({k: v for k, v in given.items() if k not in cleared}, prefix)
        now = self.store.queue_limits(self.name)._replace(**{k: None for k in cleared})
        merged = limits.merge(changed, now)
        self._writes.append(lambda: self.store.set_queue_limits(self.name, merged))
        return merged


def set_queue_parallel(store: Store, name: str, parallel: int | None) -> None:
    """Run at most ``parallel`` tasks of queue ``name`` at a time (None: no limit)."""
    changes = QueueChanges(store, name)
    changes.parallel(parallel)
    changes.apply()


def set_queue_rate(store: Store, name: str, rate: object, field: str = "rate") -> Rate | None:
    """See :meth:`QueueChanges.rate`."""
    changes = QueueChanges(store, name)
    found = changes.rate(rate, field)
    changes.apply()
    return found


def set_queue_status_dir(store: Store, name: str, directory: str | None) -> None:
    """See :meth:`QueueChanges.status_dir`."""
    changes = QueueChanges(store, name)
    changes.status_dir(directory)
    changes.apply()


def set_queue_hooks(store: Store, name: str, *, on_finish: str | None = None,
                    url: str | None = None) -> None:
    """See :meth:`QueueChanges.hooks`."""
    changes = QueueChanges(store, name)
    changes.hooks(on_finish=on_finish, url=url)
    changes.apply()


def set_queue_retention(store: Store, name: str, *, retain: str | None = None,
                        retain_count: str | None = None) -> None:
    """See :meth:`QueueChanges.retention`."""
    changes = QueueChanges(store, name)
    changes.retention(retain=retain, retain_count=retain_count)
    changes.apply()


def set_queue_output(store: Store, name: str, *, head: object = ..., tail: object = ...,
                     max_tail: int | None = None) -> tuple[int | None, int | None]:
    """See :meth:`QueueChanges.output`."""
    changes = QueueChanges(store, name)
    found = changes.output(head=head, tail=tail, max_tail=max_tail)
    changes.apply()
    return found


def set_queue_limits(store: Store, name: str, given: dict[str, object],
                     prefix: str = "") -> Limits:
    """See :meth:`QueueChanges.limits`."""
    changes = QueueChanges(store, name)
    found = changes.limits(given, prefix)
    changes.apply()
    return found
