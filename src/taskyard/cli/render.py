"""Human output: cells safe against terminal escapes in task data, times as people read
them, and the task tables (fitted by ``tables.py``)."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence

from ..lifecycle import Reason, Status
from ..model import Attempt, Event, Task, TaskSpec, iso
from .tables import CUT, TIME, WRAP, Col, Styled, fields, table

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def safe(text: str) -> str:
    """Make control characters visible (``\\x1b``, ``\\n``) so task data cannot drive the
    terminal or break a table's rows."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group()) or f"\\x{ord(m.group()):02x}", text)


def what(task: Task | TaskSpec) -> str:
    """The command, or ``function(kwargs)`` for a function task, or ``(tracked)`` for
    work taskyard did not start."""
    if getattr(task, "tracked", False):
        return "(tracked)"
    if task.function is not None:
        import json

        args = json.dumps(task.kwargs or {}, ensure_ascii=False)[1:-1]
        return f"{task.function}({args[:200]})"
    return command(task.argv)


def command(argv: Sequence[str]) -> str:
    return safe(shlex.join(argv))


def duration(task: Task) -> str:
    if task.started_at is None:
        return ""
    end = task.finished_at if task.finished_at is not None else time.time()
    return human_seconds(end - task.started_at)


def human_seconds(total: float) -> str:
    if total < 60:
        return f"{total:.1f}s"
    minutes, sec = divmod(int(total), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def outcome(task: Task) -> str:
    if task.reason is None:
        return str(task.status)
    detail = task.reason.value
    if task.reason is Reason.LIMIT and task.error:  # which one: "memory limit 512M"
        detail += f" {task.error.split()[0]}"
    elif task.reason is Reason.REPORTED:
        pass  # its exit is 0 by definition: "failed (reported)", the message in show
    elif task.exit_code is not None:
        detail += f" {task.exit_code}"
    elif task.signal is not None:
        detail += f" {task.signal}"
    return f"{task.status} ({detail})"


def progress(task: Task) -> str:
    p = task.progress
    if p.done is None:
        return ""
    text = f"{p.done:g}/{p.total:g}" if p.total else f"{p.done:g}"
    if p.total:
        text += f" {100 * p.done / p.total:.0f}%"
    if p.message:
        text += " " + safe(p.message)
    return text


def clock(ts: float | None, utc: bool = False, *, minutes: bool = False,
          now: float | None = None) -> str:
    """A time as a person reads it in a terminal: local time (UTC with ``utc``) to the
    millisecond, ``14:46:42.058``, with the date first when it is not today
    (``2026-12-03 14:46:42.058``); to the minute with ``minutes`` (cron ticks). "" for
    None. ``--json`` has the full ISO 8601 instead."""
    if ts is None:
        return ""
    from datetime import UTC, datetime

    zone = UTC if utc else None
    try:
        when = datetime.fromtimestamp(ts, zone)
        today = datetime.fromtimestamp(time.time() if now is None else now, zone).date()
    except (OverflowError, OSError, ValueError):  # beyond what the platform converts
        return iso(ts) or ""
    text = (f"{when:%H:%M}" if minutes
            else f"{when:%H:%M:%S}.{when.microsecond // 1000:03d}")  # cut, never rounded up
    if when.date() != today:
        text = f"{when.year:04d}-{when.month:02d}-{when.day:02d} {text}"
    return text


_STYLE = {"succeeded": "green", "failed": "red", "stopped": "yellow", "running": "cyan",
          "paused": "magenta", "queued": "", "scheduled": "dim"}


def task_table(tasks: Sequence[Task], utc: bool = False) -> None:
    """``ls``: one row per task. Ids, statuses and times stay whole; names, queues,
    progress and commands give way (``--json`` has them whole)."""

    now = time.time()
    cols = [Col("ID", right=True), Col("NAME", CUT, floor=8, cap=24),
            Col("QUEUE", CUT, floor=8, cap=16), Col("STATUS"),
            Col("PROGRESS", CUT, floor=8, cap=30), Col("COMMAND", CUT, floor=16),
            Col("STARTED", TIME), Col("TIME", right=True)]
    rows = [[str(t.id), safe(t.name or ""), safe(t.queue), outcome(t), progress(t), what(t),
             clock(t.started_at, utc, now=now), duration(t)] for t in tasks]
    keep = [i for i, c in enumerate(cols)
            if c.head in ("ID", "STATUS", "COMMAND") or any(r[i] for r in rows)]
    status = cols.index(next(c for c in cols if c.head == "STATUS"))
    cells = [[Styled(r[i], _STYLE.get(t.status, "")) if i == status else r[i]
              for i in keep] for t, r in zip(tasks, rows, strict=True)]
    table([cols[i] for i in keep], cells)


def _fields(task: Task, utc: bool, now: float) -> list[tuple[str, str]]:
    """``show``'s fields of a task, as (name, text); empty ones are left out."""
    import json

    rows = [("id", str(task.id)), ("name", task.name or ""), ("kind", task.kind),
            ("queue", task.queue),
            ("status", outcome(task)), ("error", task.error or ""),
            ("command", what(task)), ("cwd", task.cwd or ""),
            ("progress", progress(task)), ("attempt", str(task.attempt)),
            ("pid", str(task.pid or "")), ("created", clock(task.created_at, utc, now=now)),
            ("run at", clock(task.run_at, utc, now=now)
             if task.status is Status.SCHEDULED else ""),
            ("started", clock(task.started_at, utc, now=now)),
            ("finished", clock(task.finished_at, utc, now=now)),
            ("duration", duration(task)), ("priority", str(task.priority or "")),
            ("tenant", task.tenant if task.tenant != "default" else ""),
            ("mutex", task.mutex or ""), ("unique", task.unique or ""),
            ("schedule", task.schedule or ""), ("tick", clock(task.fire_at, utc, now=now)),
            ("on finish", json.dumps(list(task.on_finish)) if task.on_finish is not None else ""),
            ("hook for", f"task {task.hook_for[0]}, attempt {task.hook_for[1]}"
             if task.hook_for else ""),
            ("limits", task.limits.describe()),
            ("rate limit", task.rate_limit.describe() if task.rate_limit else "")]
    if task.function is not None and task.status is Status.SUCCEEDED:
        rows.append(("result", json.dumps(task.result, ensure_ascii=False)[:2000]))
    if task.config:
        rows.append(("config", json.dumps(task.config, ensure_ascii=False)))
    if task.meta:
        rows.append(("meta", json.dumps(task.meta, ensure_ascii=False)))
    rows.extend(("env", f"{key} (set)") for key in sorted(task.env))
    return [(key, safe(value)) for key, value in rows if value]


def usage(a: Attempt) -> str:
    """``0.52s user, 0.10s system CPU, 23.4 MiB peak``."""
    peak = f", {(a.max_rss_kib or 0) / 1024:.1f} MiB peak" if a.max_rss_kib else ""
    return f"{a.cpu_user or 0:.2f}s user, {a.cpu_system or 0:.2f}s system CPU{peak}"


def _transition(e: Event) -> tuple[str, str]:
    """FROM and TO of an event; a note (a hook's delivery, say) changes no status."""
    if e.from_status is not None and e.from_status == e.to_status:
        return "", "(note)"
    return str(e.from_status or ""), str(e.to_status)


def _hook_run(hook: Task) -> str:
    """``task 18 (attempt 1): succeeded``."""
    attempt = hook.hook_for[1] if hook.hook_for else "?"
    return f"task {hook.id} (attempt {attempt}): {outcome(hook)}"


def output_bounds(of: Attempt | Task) -> str:
    """``first 1M and last 32M of each stream`` (a tail of 0: the first bytes only)."""
    from ..limits import size_text

    head = "the server's" if of.output_head is None else size_text(of.output_head)
    if of.output_tail == 0:
        return f"first {head} of each stream"
    tail = "the server's" if of.output_tail is None else size_text(of.output_tail)
    return f"first {head} and last {tail} of each stream"


def task_detail(task: Task, attempts: Sequence[Attempt], events: Sequence[Event],
                utc: bool = False, hooks: Sequence[Task] = (),
                held_back: Sequence[str] = ()) -> None:
    """``show``: the task's fields, then its steps, attempts and events."""
    now = time.time()
    rows = _fields(task, utc, now)
    latest = attempts[-1] if attempts else None
    if latest is not None and latest.report is not None:  # the task's own verdict
        said = f": {latest.report_message}" if latest.report_message else ""
        rows.append(("reported", safe(f"{latest.report}{said}")))
    if latest is not None and latest.cpu_user is not None:
        rows.append(("used", usage(latest)))
    if latest is not None and latest.output_tail is not None:
        rows.append(("output kept", output_bounds(latest)))
    elif task.output_head is not None or task.output_tail is not None:
        rows.append(("output kept", output_bounds(task) + " (asked)"))
    if hooks:
        rows.append(("hooks", ", ".join(_hook_run(h) for h in hooks)))
    rows.extend(("held back", safe(reason)) for reason in held_back)  # a rate limit waits
    fields(rows)
    if isinstance(task.steps, dict) and task.steps.get("steps"):
        table([Col("STEP", CUT, floor=8), Col("STATUS"), Col("CHUNKS", right=True),
               Col("RETRIES", right=True), Col("ERROR", WRAP, floor=12)],
              [[safe(str(step.get("name"))), str(step.get("status")),
                str(step.get("chunks", "")), str(step.get("retries", "")),
                safe(str(step.get("error") or ""))] for step in task.steps["steps"]],
              title="steps")
    if attempts:
        table([Col("ATTEMPT"), Col("PID"), Col("OUTCOME"), Col("STARTED", TIME),
               Col("FINISHED", TIME)],
              [[str(a.epoch), str(a.pid or ""),
                str(a.status or "running") + (f" ({a.reason})" if a.reason else ""),
                clock(a.started_at, utc, now=now), clock(a.finished_at, utc, now=now)]
               for a in attempts], title="attempts")
    table([Col("AT", TIME), Col("FROM"), Col("TO"), Col("BY", WRAP, floor=19), Col("ATTEMPT"),
           Col("DETAIL", WRAP, floor=16)],
          [[clock(e.at, utc, now=now), *_transition(e), safe(e.by), str(e.attempt),
            safe(e.detail or "")] for e in events], title="events")
