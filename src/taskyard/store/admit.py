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
- at most one active task per mutex key;
- at most N starts per sliding period per rate key (a task's own key, and its queue's
  when the queue has a rate); the windows are counted by ``store/rates.py``. A strict
  queue's head held back by its key's rate holds the queue back, as for a mutex.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from ..rates import Rate, Window, queue_key, task_key


class Candidate(NamedTuple):
    id: int
    queue: str
    tenant: str
    mutex: str | None
    rate_key: str | None = None  #: its own rate key, if any
    rate: str | None = None  #: its own rate, as stored (``N/SECONDS``)


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
        self.queue_rates: dict[str, Rate] = {}
        self.windows: dict[tuple[str, float], Window] = {}  #: by (stored key, period)
        self.rate_taken: Counter[str] = Counter()  #: starts of this claim, by stored key
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
        rated = {q for q, r in self.queue_rates.items() if self._rate_full(queue_key(q), r)}
        return sorted(full | rated | self.held_back)

    # -- rate limits ---------------------------------------------------------------

    def add_window(self, w: Window) -> None:
        self.windows[w.key, w.rate.period] = w

    def has_window(self, key: str, stored_rate: str) -> bool:
        starts, _, period = stored_rate.partition("/")
        w = self.windows.get((key, float(period)))
        return w is not None and w.rate.starts == int(starts)

    def rate_keys(self, c: Candidate) -> list[str]:
        """The stored keys whose windows a start of ``c`` counts in."""
        keys = [queue_key(c.queue)] if c.queue in self.queue_rates else []
        return keys + ([task_key(c.rate_key)] if c.rate_key is not None else [])

    def _rate_full(self, key: str, rate: Rate) -> bool:
        w = self.windows.get((key, rate.period))
        return w is not None and w.starts + self.rate_taken[key] >= rate.starts

    def _queue_rate_full(self, queue: str) -> bool:
        rate = self.queue_rates.get(queue)
        return rate is not None and self._rate_full(queue_key(queue), rate)

    def _own_rate_full(self, c: Candidate) -> bool:
        if c.rate_key is None or c.rate is None:
            return False
        starts, _, period = c.rate.partition("/")
        return self._rate_full(task_key(c.rate_key), Rate(int(starts), float(period)))

    def full_rates(self) -> list[str]:
        """Task keys full for a rate, as ``key rate`` (what SQL compares them with)."""
        return sorted(f"{w.key[2:]} {w.rate.stored()}" for w in self.windows.values()
                      if w.key.startswith("k:") and self._rate_full(w.key, w.rate))

    def filled(self) -> list[Window]:
        """Windows this claim's starts filled (their ``frees_at`` is not known yet)."""
        return [w for w in self.windows.values()
                if not w.full and self._rate_full(w.key, w.rate)]

    def wake_at(self) -> float | None:
        """The first time a full window frees a start, if any is full."""
        return min((w.frees_at for w in self.windows.values() if w.frees_at is not None),
                   default=None)

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
            if queue_full or self._queue_rate_full(c.queue):
                continue
            if (tenant_full or (c.mutex is not None and c.mutex in self.mutexes)
                    or self._own_rate_full(c)):
                if self.queue_limits.get(c.queue) == 1:
                    self.held_back.add(c.queue)  # nobody overtakes a strict queue's head
                continue
            self._take(c.queue, c.tenant, c.mutex)
            self.rate_taken.update(self.rate_keys(c))
            chosen.append(c.id)
        return chosen
