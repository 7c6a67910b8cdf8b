"""Why is this task not running? The concrete reasons, from stored facts.

Pure: ``BrowseStore.waiting`` reads the facts in one transaction; this words them.
Each reason has a stable ``code`` (for programs) and a sentence (for people).
"""

from __future__ import annotations

from typing import NamedTuple

from .lifecycle import Status
from .model import iso
from .store.browse import AHEAD_CAP, Waiting


class Reason(NamedTuple):
    code: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


def _span(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 24 else f"{hours // 24} d {hours % 24} h"


def _many(n: int) -> str:
    return f"over {AHEAD_CAP:,}" if n > AHEAD_CAP else str(n)


def _ids(ids: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def explain(w: Waiting, now: float, lease: float) -> list[Reason]:
    """The reasons ``w.task`` is not running now (empty when it runs or has ended)."""
    if w.task.status is Status.SCHEDULED:
        return _scheduled(w, now) + _servers(w, now, lease)
    if w.task.status is not Status.QUEUED:
        return []
    found = _queue(w) + _tenant(w) + rate_reasons(w, now)
    if w.mutex_holder is not None:
        found.append(Reason("mutex", f"mutex {w.task.mutex!r} is held by task {w.mutex_holder}"))
    found += _servers(w, now, lease)
    return found or [_otherwise(w, now, lease)]


def _scheduled(w: Waiting, now: float) -> list[Reason]:
    task, found = w.task, []
    if task.run_at is not None and task.run_at > now:
        when = (iso(task.run_at) or "")[:19].replace("T", " ")
        found.append(Reason("start_time", f"it starts at {when} UTC"
                            f" (in {_span(task.run_at - now)})"))
    if w.after:
        waits = ", ".join(f"task {i} ({status})" for i, status in w.after[:5])
        found.append(Reason("dependencies", f"it runs after {waits} succeeded"))
    return found or [Reason("due", "it is due: the next server tick queues it")]


def _queue(w: Waiting) -> list[Reason]:
    queue, found = w.task.queue, []
    if w.queue_paused:
        found.append(Reason("queue_paused", f"queue {queue!r} is paused"))
    if w.queue_parallel is not None and len(w.queue_active) >= w.queue_parallel:
        found.append(Reason("queue_limit", f"queue {queue!r} runs at most {w.queue_parallel}"
                            f" at a time and runs {len(w.queue_active)}"
                            f" (task {_ids(w.queue_active)})"))
    elif w.queue_parallel == 1 and w.queue_ahead:
        found.append(Reason("queue_order", f"queue {queue!r} runs one task at a time in"
                            f" order: {_many(w.queue_ahead)} queued task(s) go first"))
    return found


def rate_reasons(w: Waiting, now: float) -> list[Reason]:
    """The rate limits that hold it back now (its queue's, its own key's)."""
    return [Reason("rate_limit", f"held back by the {r.describe(now)}")
            for r in w.rates if r.full]


def _tenant(w: Waiting) -> list[Reason]:
    tenant = w.task.tenant
    if not w.tenant_enabled:
        return [Reason("tenant_disabled", f"tenant {tenant!r} is disabled")]
    if w.tenant_parallel is not None and w.tenant_active >= w.tenant_parallel:
        return [Reason("tenant_limit", f"tenant {tenant!r} runs at most {w.tenant_parallel}"
                       f" at a time and runs {w.tenant_active}")]
    return []


def _otherwise(w: Waiting, now: float, lease: float) -> Reason:
    """Nothing holds it back by itself: the slots are busy, or others go first."""
    slots = sum(s[3] for s in w.servers if s[2] >= now - lease)
    if w.running >= slots:
        return Reason("slots", f"every slot is busy: {w.running} task(s) run in {slots}"
                      " slot(s)")
    if w.queue_ahead:
        return Reason("ahead", f"{_many(w.queue_ahead)} task(s) of queue {w.task.queue!r} are"
                      " claimed before it")
    return Reason("next", "nothing holds it back: a server claims it at its next tick")


def _servers(w: Waiting, now: float, lease: float) -> list[Reason]:
    alive = [s for s in w.servers if s[2] >= now - lease]
    if alive:
        return []
    if not w.servers:
        return [Reason("no_server", "no server is running on this store"
                       " (start one: taskyard server start)")]
    last = max(w.servers, key=lambda s: s[2])
    return [Reason("no_server", f"no server is alive: the last one heard from, {last[0]} on"
                   f" {last[1]}, was {now - last[2]:.0f} s ago")]
