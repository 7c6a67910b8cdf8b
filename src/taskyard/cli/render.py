"""Human output: rich tables, safe against terminal escapes in task data."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from ..lifecycle import Status
from ..model import Attempt, Event, Task, TaskSpec, iso

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def safe(text: str) -> str:
    """Make control characters visible (``\\x1b``, ``\\n``) so task data cannot drive the
    terminal or break a table's rows."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group()) or f"\\x{ord(m.group()):02x}", text)


def what(task: Task | TaskSpec) -> str:
    """The command, or ``function(kwargs)`` for a function task."""
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
    if task.exit_code is not None:
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


_STYLE = {"succeeded": "green", "failed": "red", "stopped": "yellow", "running": "cyan",
          "paused": "magenta", "queued": "", "scheduled": "dim"}


def started(task: Task) -> str:
    """Local time of the start: the time alone if today, else the date too."""
    if task.started_at is None:
        return ""
    when = time.localtime(task.started_at)
    today = time.localtime()[:3] == when[:3]
    return time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M", when)


def _console() -> Any:
    """A rich console for our tables. On a closed pipe (``| head``) rich would exit 1;
    this one raises BrokenPipeError, which main() ends quietly with 0, as for any
    other command."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(highlight=False)


def plain_table(heads: Sequence[str], rows: Iterable[Sequence[str]], *,
                right: Collection[str] = (), wrap: Collection[str] = ()) -> None:
    """Print a borderless table: columns in ``right`` right-aligned, those in ``wrap``
    allowed to wrap (the others are cut short with … when they must). Cells are
    printed as given (pass them through :func:`safe`). See :func:`fit_widths`."""
    from rich.table import Table

    rows = [tuple(row) for row in rows]
    console = _console()
    natural = [max([len(head)] + [len(row[i]) for row in rows]) for i, head in enumerate(heads)]
    widths = fit_widths(heads, natural, wrap, console.width)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for head, width in zip(heads, widths, strict=True):
        table.add_column(head, width=width, no_wrap=head not in wrap,
                         overflow="fold" if head in wrap else "ellipsis",
                         justify="right" if head in right else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def fit_widths(heads: Sequence[str], natural: Sequence[int], wrap: Collection[str],
               total: int) -> list[int]:
    """Column widths that fit ``total`` characters (2 between columns), taken from
    the natural ones in this order: columns that may wrap (down to 12), the first
    column, a name (down to 8), the widest of the others, then the first two again
    down to their headings; none narrower than its heading. Past that the table is
    wider than ``total``."""
    widths = list(natural)
    excess = sum(widths) + 2 * (len(widths) - 1) - total
    wrapping = [i for i, h in enumerate(heads) if h in wrap and i]
    others = sorted((i for i in range(1, len(heads)) if i not in wrapping),
                    key=lambda i: -widths[i])
    for columns, floor in ((wrapping, 12), ([0], 8), (others, 0), (wrapping, 0), ([0], 0)):
        for i in columns:
            if excess <= 0:
                return widths
            cut = min(excess, max(0, widths[i] - max(len(heads[i]), floor)))
            widths[i] -= cut
            excess -= cut
    return widths


def task_table(tasks: Sequence[Task]) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    rows: list[tuple[str, ...]] = [(str(t.id), safe(t.name or "")[:16], safe(t.queue)[:12], outcome(t),
             progress(t)[:24], what(t), started(t), duration(t)) for t in tasks]
    heads = ["ID", "NAME", "QUEUE", "STATUS", "PROGRESS", "COMMAND", "STARTED", "TIME"]
    keep = [i for i, h in enumerate(heads)
            if h in ("ID", "STATUS", "COMMAND") or any(r[i] for r in rows)]
    heads = [heads[i] for i in keep]
    rows = [tuple(r[i] for i in keep) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    # The command gets what the other columns leave; they never shrink.
    cmd = heads.index("COMMAND")
    room = console.width - (sum(widths) - widths[cmd]) - 2 * (len(heads) - 1)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i, head in enumerate(heads):
        table.add_column(head, no_wrap=True, overflow="ellipsis",
                         justify="right" if head in ("ID", "TIME") else "left",
                         min_width=widths[i] if i != cmd else None,
                         max_width=max(10, room) if i == cmd else None)
    status = heads.index("STATUS")
    for t, r in zip(tasks, rows, strict=True):
        cells: list[Text | str] = [Text(c) for c in r]
        cells[status] = Text(r[status], style=_STYLE.get(t.status, ""))
        table.add_row(*cells)
    console.print(table)


def task_detail(task: Task, attempts: Sequence[Attempt], events: Sequence[Event]) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    rows = [("id", str(task.id)), ("name", task.name or ""), ("queue", task.queue),
            ("status", outcome(task)), ("error", task.error or ""),
            ("command", what(task)), ("cwd", task.cwd or ""),
            ("progress", progress(task)), ("attempt", str(task.attempt)),
            ("pid", str(task.pid or "")), ("created", iso(task.created_at) or ""),
            ("started", iso(task.started_at) or ""), ("finished", iso(task.finished_at) or ""),
            ("duration", duration(task)), ("priority", str(task.priority or "")),
            ("tenant", task.tenant if task.tenant != "default" else ""),
            ("mutex", task.mutex or ""), ("unique", task.unique or ""),
            ("schedule", task.schedule or ""), ("tick", iso(task.fire_at) or "")]
    import json

    if task.function is not None and task.status is Status.SUCCEEDED:
        rows.append(("result", json.dumps(task.result, ensure_ascii=False)[:2000]))
    if task.config:
        rows.append(("config", json.dumps(task.config, ensure_ascii=False)))
    if task.meta:
        rows.append(("meta", json.dumps(task.meta, ensure_ascii=False)))
    for key in sorted(task.env):
        rows.append((f"env {key}", "(set)"))
    for key, value in rows:
        if value:
            console.print(Text(f"{key:>10}  ", style="bold"), Text(safe(value)), sep="")
    if isinstance(task.steps, dict) and task.steps.get("steps"):
        table = Table("STEP", "STATUS", "CHUNKS", "RETRIES", "ERROR", box=None, title="steps",
                      title_justify="left", pad_edge=False)
        for step in task.steps["steps"]:
            table.add_row(safe(str(step.get("name"))), str(step.get("status")),
                          str(step.get("chunks", "")), str(step.get("retries", "")),
                          safe(str(step.get("error") or ""))[:80])
        console.print(table)
    if attempts:
        table = Table("ATTEMPT", "PID", "OUTCOME", "STARTED", "FINISHED", box=None,
                      title="attempts", title_justify="left", pad_edge=False)
        for a in attempts:
            result = str(a.status or "running") + (f" ({a.reason})" if a.reason else "")
            table.add_row(str(a.epoch), str(a.pid or ""), result, iso(a.started_at) or "",
                          iso(a.finished_at) or "")
        console.print(table)
    table = Table("AT", "FROM", "TO", "BY", "ATTEMPT", "DETAIL", box=None, title="events",
                  title_justify="left", pad_edge=False)
    for e in events:
        table.add_row(iso(e.at) or "", str(e.from_status or ""), str(e.to_status), safe(e.by),
                      str(e.attempt), e.detail or "")
    console.print(table)
