"""``taskyard stats [--since 1h] [--queue Q] [--tenant T] [--json]``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .common import json_flag, print_json, store, utc, utc_flag

if TYPE_CHECKING:
    from ..stats import Group, Stats, Timing

_SPARKS = " ▁▂▃▄▅▆▇█"
_STATUSES = ("scheduled", "queued", "running", "paused", "succeeded", "failed", "stopped")


def register(sub: Any) -> None:
    p = sub.add_parser("stats", help="tasks by status; submitted, started, finished, waits,"
                                     " run times, failures and memory of a recent window")
    p.add_argument("--since", metavar="DURATION", default="1h",
                   help="the window: the last 30s, 10m, 1h (default), 1d... up to 100d")
    p.add_argument("--queue", metavar="Q", help="only this queue's tasks")
    p.add_argument("--tenant", metavar="T", help="only this tenant's tasks")
    json_flag(p)
    utc_flag(p)
    p.set_defaults(handler=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from .. import stats, validate

    window = stats.window_of(args.since)
    found = stats.collect(store(args), window, queue=validate.check_name(args.queue, "queue"),
                          tenant=validate.check_name(args.tenant, "tenant"))
    if args.json:
        print_json(found.to_json())
    else:
        show(found, args.since, utc(args))
    return 0


def show(s: Stats, since: str, in_utc: bool = False) -> None:
    """The statistics as a person reads them: the totals, then a table per queue and
    per tenant."""
    from .render import clock, safe

    where = ", ".join(f"{what} {safe(name)}" for what, name in
                      (("queue", s.queue), ("tenant", s.tenant)) if name) or "every queue"
    out = sys.stdout.write
    out(f"the last {safe(since)} ({clock(s.since, in_utc, now=s.until)} to"
        f" {clock(s.until, in_utc, now=s.until)}), {where}\n\n")
    t = s.total
    minutes = (s.until - s.since) / 60
    lines = [
        ("tasks now", ", ".join(f"{t.tasks[k]:,} {k}" for k in _STATUSES if t.tasks.get(k))
         or "none"),
        ("submitted", _rate(t.submitted, minutes, s.per_minute["submitted"])),
        ("started", _rate(t.started, minutes, s.per_minute["started"])),
        ("finished", _rate(sum(t.finished.values()), minutes, s.per_minute["finished"])
         + ": " + ", ".join(f"{n:,} {k}" for k, n in t.finished.items())),
        ("queue wait", _timing(t.wait)),
        ("run time", _timing(t.run)),
        ("failures", ", ".join(f"{safe(r)} {n:,}" for r, n in t.failures.items()) or "none"),
        ("memory now", _memory(t)),
    ]
    for head, text in lines:
        out(f"{head:<12}{text}\n")
    out("\n")
    for kind in ("submitted", "started", "finished"):
        out(f"{kind + '/min':<14}{spark(s.per_minute[kind])}\n")
    for head, groups in (("QUEUE", s.queues), ("TENANT", s.tenants)):
        if groups:
            out("\n")
            _table(head, groups)


def _table(head: str, groups: dict[str, Group]) -> None:
    from .render import safe
    from .tables import WRAP, Col, table

    # Counts now per queue are `queue ls`'s (and all of them are in --json): eight
    # columns fit 80.
    heads = ("SUBMIT", "START", "END", "FAILED", "WAIT p50/95", "RUN p50/95", "MEMORY")
    rows = []
    for name, g in groups.items():
        rows.append((safe(name), f"{g.submitted:,}", f"{g.started:,}",
                     f"{sum(g.finished.values()):,}", f"{g.finished['failed']:,}",
                     _pair(g.wait), _pair(g.run),
                     kib(g.memory.total_kib) if g.memory.sampled else "-"))
    table([Col(head, WRAP, floor=8), *(Col(h, right=True) for h in heads)], rows)


def _rate(n: int, minutes: float, series: list[int]) -> str:
    return f"{n:,} ({n / max(minutes, 1 / 60):,.1f}/min, busiest minute {max(series):,})"


def _pair(t: Timing) -> str:
    return f"{_seconds(t.p50)}/{_seconds(t.p95)}" if t.n else "-"


def _seconds(value: float | None) -> str:
    from .render import human_seconds

    return "-" if value is None else human_seconds(value)


def _timing(t: Timing) -> str:
    if not t.n:
        return "none"
    return (f"p50 {_seconds(t.p50)}, p95 {_seconds(t.p95)}, max {_seconds(t.max)}"
            f" (of {t.n:,})")


def _memory(g: Group) -> str:
    m = g.memory
    if not m.tasks:
        return "no task running"
    if not m.sampled:
        return f"{m.tasks:,} running, none sampled yet"
    tasks = "task" if m.sampled == 1 else "tasks"
    text = (f"{kib(m.total_kib)} in {m.sampled:,} running {tasks}, the most"
            f" {kib(m.max_kib or 0)} (task {m.max_task})")
    if m.sampled < m.tasks:
        text += f"; {m.tasks - m.sampled:,} not sampled yet"
    return text


def kib(value: int) -> str:
    """KiB as people read them: 512 KiB, 12.5 MiB, 1.2 GiB."""
    if value < 1024:
        return f"{value} KiB"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} MiB"
    return f"{value / 1024 / 1024:.1f} GiB"


def spark(series: list[int], width: int = 60) -> str:
    """The series as a line of at most ``width`` bars (minutes summed to fit), oldest
    first, scaled to its busiest bar."""
    per = max(1, -(-len(series) // width))
    bars = [sum(series[i:i + per]) for i in range(0, len(series), per)]
    top = max(bars, default=0)
    if not top:
        return "(none)"
    return "".join(_SPARKS[-(-n * (len(_SPARKS) - 1) // top)] for n in bars) + (
        f"  ({per} min a bar)" if per > 1 else "")
