"""Which queued tasks may start now: queue and tenant parallel limits and mutexes.

Pure logic (no SQL): the store feeds it the active tasks and a window of
candidates in claim order (priority, then submit order) inside the claiming
transaction, so the decision holds for every server sharing the store.

Rules:

- a queue with a parallel limit runs at most that many tasks at a time (running
  and paused tasks count: a paused task keeps its slot);
- a queue with limit 1 is strictly ordered: its first candidate starts or nobody
  in that queue does (a head waiting for its mutex holds the queue back);
- a tenant with a parallel limit runs at most that many tasks at a time;
- at most one active task per mutex key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple


class Candidate(NamedTuple):
    id: int
    queue: str
    tenant: str
    mutex: str | None


class Usage:
    """What runs now, and what may not take another task."""

    def __init__(self, active: Iterable[tuple[str, str, str | None]] | None,
                 queue_limits: dict[str, int], tenant_limits: dict[str, int]) -> None:
        self.queue_limits = queue_limits
        self.tenant_limits = tenant_limits
        self.queues: Counter[str] = Counter()
        self.tenants: Counter[str] = Counter()
        self.mutexes: set[str] = set()
        self.held_back: set[str] = set()  #: strict queues whose head must wait
        self.unknown = True  #: the active tasks were not counted yet
        if active is not None:
            self.count(active)

    def count(self, active: Iterable[tuple[str, str, str | None]]) -> None:
        """Count in the tasks that run now (once)."""
        for queue, tenant, mutex in active:
            self._take(queue, tenant, mutex)
        self.unknown = False

    def _take(self, queue: str, tenant: str, mutex: str | None) -> None:
        self.queues[queue] += 1
        self.tenants[tenant] += 1
        if mutex is not None:
            self.mutexes.add(mutex)

    def strict(self) -> list[str]:
        """Queues run one at a time in order (limit 1)."""
        return sorted(q for q, n in self.queue_limits.items() if n == 1)

    def full_queues(self) -> list[str]:
        full = {q for q, n in self.queue_limits.items() if self.queues[q] >= n}
        return sorted(full | self.held_back)

    def full_tenants(self) -> list[str]:
        return sorted(t for t, n in self.tenant_limits.items() if self.tenants[t] >= n)

    def held_mutexes(self) -> list[str]:
        return sorted(self.mutexes)

    def admit(self, candidates: Iterable[Candidate], want: int) -> list[int]:
        """Up to ``want`` candidates that may start, in the order given; counts them in."""
        chosen: list[int] = []
        for c in candidates:
            if len(chosen) >= want:
                break
            if c.queue in self.held_back:
                continue
            queue_full = self.queues[c.queue] >= self.queue_limits.get(c.queue, 1 << 62)
            tenant_full = self.tenants[c.tenant] >= self.tenant_limits.get(c.tenant, 1 << 62)
            if queue_full:
                continue
            if tenant_full or (c.mutex is not None and c.mutex in self.mutexes):
                if self.queue_limits.get(c.queue) == 1:
                    self.held_back.add(c.queue)  # nobody overtakes a strict queue's head
                continue
            self._take(c.queue, c.tenant, c.mutex)
            chosen.append(c.id)
        return chosen
