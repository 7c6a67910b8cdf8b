"""Retention: which finished tasks go, by age (``retain``) and by count per queue
(``retain_count``), per queue overridable; run by one server at a time (the holder of
the cron lease) and by hand (``taskyard prune``).

Removal goes in small batches, each its own transaction, sized so that none holds the
store's write lock for more than :data:`BATCH_LOCK` seconds: a server pruning a
backlog of a million tasks still lets every other writer in between batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from .store.retention import Pruned

BATCH_LOCK = 0.05  #: the longest a batch may hold the write lock (seconds)
FIRST_BATCH = 50
MAX_BATCH = 2000
PAGE = 10_000  #: candidates read at a time


class Rule(NamedTuple):
    """What a queue keeps: finished tasks younger than ``age`` seconds, and the newest
    ``newest`` of them (None: no such limit)."""

    age: float | None = None
    newest: int | None = None

    @property
    def active(self) -> bool:
        return self.age is not None or self.newest is not None


class Store(Protocol):
    def queue_retention(self) -> dict[str, tuple[float | None, int | None]]: ...
    def finished_queues(self) -> list[str]: ...
    def prune_candidates(self, queue: str, *, before: float | None = ...,
                         beyond: int | None = ..., statuses: Sequence[str] = ...,
                         limit: int | None = ...) -> list[int]: ...
    def purge(self, ids: Sequence[int]) -> list[Pruned]: ...


def server_rule(retain: float, retain_count: int) -> Rule:
    """The settings' rule (0 is no limit)."""
    return Rule(retain or None, retain_count or None)


def rules(store: Store, default: Rule, queue: str | None = None) -> dict[str, Rule]:
    """Each queue with finished tasks (or just ``queue``) and the rule it follows: its
    own settings where it has them (0: no limit), else ``default``."""
    own = store.queue_retention()
    names = [queue] if queue is not None else store.finished_queues()
    out = {}
    for name in names:
        age, count = own.get(name, (None, None))
        rule = Rule(default.age if age is None else (age or None),
                    default.newest if count is None else (count or None))
        out[name] = rule
    return out


def candidates(store: Store, queue: str, rule: Rule, now: float,
               statuses: Sequence[str] = (), limit: int | None = PAGE) -> list[int]:
    """Ids the rule lets go in ``queue``, oldest first (age, then count)."""
    found: list[int] = []
    if rule.age is not None:
        found += store.prune_candidates(queue, before=now - rule.age, statuses=statuses,
                                        limit=limit)
    if rule.newest is not None:
        seen = set(found)
        found += [i for i in store.prune_candidates(queue, beyond=rule.newest,
                                                    statuses=statuses, limit=limit)
                  if i not in seen]
    return found


class Pruner:
    """Removes what rules let go, batch by batch, within a time budget."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batch = FIRST_BATCH
        self.removed: list[Pruned] = []

    def run(self, plan: dict[str, Rule], now: float, *, statuses: Sequence[str] = (),
            budget: float | None = None) -> bool:
        """Prune by ``plan``; False if the budget (seconds) ran out with more to do."""
        deadline = None if budget is None else time.monotonic() + budget
        for queue, rule in plan.items():
            while rule.active:
                ids = candidates(self.store, queue, rule, now, statuses)
                if not ids:
                    break
                for chunk in self._chunks(ids):
                    self._purge(chunk)
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                if len(ids) < PAGE:
                    break
        return True

    def _chunks(self, ids: list[int]) -> Iterator[list[int]]:
        start = 0
        while start < len(ids):
            size = self.batch
            yield ids[start:start + size]
            start += size

    def _purge(self, ids: list[int]) -> None:
        started = time.monotonic()
        self.removed += self.store.purge(ids)
        took = time.monotonic() - started
        if took > BATCH_LOCK:
            self.batch = max(1, self.batch // 2)
        elif took < BATCH_LOCK / 3 and len(ids) == self.batch:
            self.batch = min(MAX_BATCH, self.batch * 2)


class Retention:
    """A server's pruning: at its heartbeats while it holds the cron lease, a pass at
    most every :data:`PASS_EVERY` seconds, each within :data:`PASS_BUDGET` seconds (a
    backlog goes on at the next heartbeat)."""

    PASS_EVERY = 30.0
    PASS_BUDGET = 0.2

    def __init__(self, store: Store, default: Rule) -> None:
        self.store, self.default = store, default
        self.next_pass = 0.0
        self.pruner = Pruner(store)

    def due(self, now: float) -> bool:
        return now >= self.next_pass

    def run(self, now: float) -> list[Pruned]:
        """One pass (``now`` monotonic); what it removed."""
        self.pruner.removed = []
        finished = self.pruner.run(rules(self.store, self.default), time.time(),
                                   budget=self.PASS_BUDGET)
        self.next_pass = now + (self.PASS_EVERY if finished else 0.0)
        return self.pruner.removed
