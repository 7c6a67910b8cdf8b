"""One line in the server log per task transition (task, attempt, from, to, reason,
who), read from the events table, where triggers record every status change of
every writer: this server, its peers, and clients (a submit, a cancel, a restart).

Each server logs the transitions it made itself (``by`` is ``server:<id>`` or
``cron:<id>``); the server holding the cron lease also logs those clients made. So
each line is written once whatever the number of servers on a store, and a lone
server's log has them all. A server follows the events from the id it saw at its
start, a few times a second at most, and once more as it stops.

Two things keep the follower exact. On PostgreSQL ids are taken when a row is
inserted but seen when its transaction commits, so a higher id can show before a
lower one: a missing id is waited for (``HOLE_WAIT``) before the cursor moves past
it. On SQLite, removing the newest tasks deletes the newest events and their ids
are given again: the follower checks that the event under its cursor is still the
one it logged, and looks again over the ids it remembers if not.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from typing import Any, Protocol

from ..logs import batch, log_event, quote, utc_iso

log = logging.getLogger("taskyard.transitions")

FOLLOW_EVERY = 0.25  #: seconds between looks at the events (besides the last one at stop)
HOLE_WAIT = 10.0  #: seconds an id missing on PostgreSQL is waited for (then skipped)
REMEMBER = 4096  #: events logged that are remembered, to tell a given-again id
BATCH = 5000  #: events read at a time
_BARE = re.compile(r"[\w.:@/+-]+", re.ASCII)

Key = tuple[Any, ...]


class Events(Protocol):
    """The store reads the follower needs."""

    events_in_commit_order: bool

    def last_event(self) -> int: ...
    def transitions_since(self, after: int, limit: int = ...) -> list[tuple[Any, ...]]: ...


def bare_or_quoted(text: str) -> str:
    """``text`` as it is when it is a plain word (``server:ab12``, ``alice``), else quoted."""
    return text if _BARE.fullmatch(text) else quote(text)


def write_transition(row: tuple[Any, ...], logger: logging.Logger = log) -> None:
    """The log line of one event row (see ``transitions_since``)."""
    _, task, at, before, after, by, attempt, reason, name, queue = row
    text = (f"task {task} attempt {attempt}: {before or 'new'} -> {after}"
            + (f" ({bare_or_quoted(reason)})" if reason else "")
            + f" by {bare_or_quoted(by)}"
            + (f" name={quote(name)}" if name is not None else "")
            + (f" queue={bare_or_quoted(queue)}" if queue not in (None, "default") else ""))
    log_event(logger, "transition", text, task=task, attempt=attempt,
              **{"from": before, "to": after}, reason=reason, by=by, name=name, queue=queue,
              at=utc_iso(at))


class TransitionLog:
    """Follows the events and logs this server's share of them."""

    def __init__(self, instance_id: str) -> None:
        self.mine = (f"server:{instance_id}", f"cron:{instance_id}")
        self.cursor: int | None = None  #: every event up to this id is done with
        self.logged: OrderedDict[int, Key] = OrderedDict()  #: recent id -> what it was
        self.holes: dict[int, float] = {}  #: ids missing above the cursor -> first missed
        self.due = 0.0  #: monotonic time of the next look
        self.pending = False  #: this server committed since the last look

    @property
    def enabled(self) -> bool:
        return log.isEnabledFor(logging.INFO)

    def start(self, store: Events) -> None:
        """Follow from the events there are now (before recovery records crashes)."""
        if self.enabled:
            self.cursor = store.last_event()

    def tick(self, store: Events, leader: bool, now: float) -> None:
        """Look now and then (the loop's tick)."""
        if now >= self.due:
            self.due = now + FOLLOW_EVERY
            self.pending = False
            self.follow(store, leader)

    def follow(self, store: Events, leader: bool) -> None:
        """Log the events of ours that came since the last look."""
        if not self.enabled:
            return
        if self.cursor is None:
            self.start(store)
            return
        with batch():  # one write for the lines of a look, not one a line
            while self._look(store, leader):
                pass

    def _look(self, store: Events, leader: bool) -> bool:
        """One batch; True if there may be more."""
        assert self.cursor is not None
        anchor = self.logged.get(self.cursor)
        rows = store.transitions_since(self.cursor - 1 if anchor else self.cursor, BATCH)
        if anchor is not None:
            if not rows or rows[0][0] != self.cursor or _key(rows[0]) != anchor:
                # the event under the cursor was deleted (its task removed), and its id
                # may have been given again: look over the ids remembered
                self.cursor = next(iter(self.logged)) - 1
                rows = store.transitions_since(self.cursor, BATCH)
            else:
                rows = rows[1:]
        for row in rows:
            key = _key(row)
            if self.logged.get(row[0]) != key:
                self._remember(row[0], key)
                if row[3] != row[4] and self._ours(row[5], leader):  # not a note
                    write_transition(row)
        before = self.cursor
        self._advance({row[0] for row in rows}, rows[-1][0] if rows else self.cursor,
                      store.events_in_commit_order)
        return len(rows) >= BATCH and self.cursor > before

    def _remember(self, event_id: int, key: Key) -> None:
        self.logged[event_id] = key
        self.logged.move_to_end(event_id)
        while len(self.logged) > REMEMBER:
            self.logged.popitem(last=False)

    def _ours(self, by: str, leader: bool) -> bool:
        if by in self.mine:
            return True
        return leader and not by.startswith(("server:", "cron:"))

    def _advance(self, present: set[int], top: int, in_order: bool) -> None:
        """Move the cursor over the ids read, and over missing ones that will not come
        (any on SQLite; on PostgreSQL those missing for HOLE_WAIT)."""
        assert self.cursor is not None
        now = time.monotonic()
        for missing in range(self.cursor + 1, top):
            if missing not in present:
                self.holes.setdefault(missing, now)
        while self.cursor < top:
            following = self.cursor + 1
            if following in present or in_order or now - self.holes[following] >= HOLE_WAIT:
                self.holes.pop(following, None)
                self.cursor = following
            else:
                break


def _key(row: tuple[Any, ...]) -> Key:
    """What tells two events under one id apart: task, time, new status, attempt."""
    return row[1], row[2], row[4], row[6]
