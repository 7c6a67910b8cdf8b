"""What the panel's templates show, computed in Python: filters as URLs, durations,
progress rates, which controls a task offers. Everything here is plain data; the
templates escape it (autoescape), and nothing a task wrote is ever marked safe."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from ..lifecycle import Status
from ..model import Task, iso
from ..store.filters import TaskFilter

STATUSES = [s.value for s in Status]


def filter_params(f: TaskFilter, **changes: Any) -> dict[str, str]:
    """The URL parameters of a filter (``changes`` override: None drops one)."""
    params: dict[str, Any] = {"status": ",".join(s.value for s in f.status) or None,
                              "queue": f.queue, "tenant": f.tenant, "name": f.name,
                              "q": f.text}
    for key, value in f.meta:
        params[f"meta.{key}"] = value
    params.update(changes)
    return {k: str(v) for k, v in params.items() if v not in (None, "")}


def query(params: dict[str, str]) -> str:
    return ("?" + urlencode(params)) if params else ""


def duration(task: Task, now: float | None = None) -> str:
    if task.started_at is None:
        return ""
    end = task.finished_at if task.finished_at is not None else (now or time.time())
    return human(end - task.started_at)


def human(seconds: float) -> str:
    if seconds < 1:
        return f"{max(0.0, seconds) * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h {minutes:02d} m" if hours else f"{minutes} m {sec:02d} s"


def progress(task: Task, now: float | None = None) -> dict[str, Any] | None:
    """Done, total, percent, message, and (while it runs) the average rate since the
    start and the time left at that rate."""
    p = task.progress
    if p.done is None:
        return None
    info: dict[str, Any] = {"done": p.done, "total": p.total, "message": p.message,
                            "percent": None, "rate": None, "eta": None}
    if p.total:
        info["percent"] = max(0.0, min(100.0, 100.0 * p.done / p.total))
    if task.started_at is not None and task.status in (Status.RUNNING, Status.PAUSED):
        elapsed = (now or time.time()) - task.started_at
        if elapsed > 0 and p.done > 0:
            rate = p.done / elapsed
            info["rate"] = f"{rate:.3g}/s" if rate >= 1 else f"{rate * 60:.3g}/min"
            if p.total and p.total > p.done:
                info["eta"] = human((p.total - p.done) / rate)
    return info


def controls(task: Task, role: str) -> list[tuple[str, str, str | None]]:
    """The controls this task offers to this role: (verb, label, the question a
    destructive one asks first, or None)."""
    if role == "viewer":
        return []
    found: list[tuple[str, str, str | None]] = []
    status, n = task.status, task.id
    if status is Status.RUNNING and (task.function is not None or task.tracked):
        found.append(("graceful", "Stop gracefully", f"Ask task {n} to stop by itself?"))
    if status is Status.RUNNING and not task.tracked:  # not ours to stop (SIGSTOP)
        found.append(("pause", "Pause", None))
    if status is Status.PAUSED:
        found.append(("resume", "Resume", None))
    if status.active:
        found.append(("kill", "Kill", f"Kill task {n}?"))
    elif status in (Status.QUEUED, Status.SCHEDULED):
        found.append(("kill", "Cancel", f"Cancel task {n}? It will not run."))
    if status.terminal and not task.tracked:  # taskyard cannot start it again
        found.append(("restart", "Restart", None))
        found.append(("delete", "Delete", f"Delete task {n} and its output?"))
    return found


def size(n: int) -> str:
    """Bytes as a person reads them: 812 B, 1.4 KiB, 3.0 MiB."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def visible(text: object, lines: bool = False) -> str:
    """Control characters shown as escapes (``\\x1b``, ``\\n``), as the CLI shows them,
    in text a task or a user gave (names, progress messages, errors); ``lines`` keeps
    line breaks."""
    def escape(m: re.Match[str]) -> str:
        char = m.group()
        if lines and char == "\n":
            return char
        return _ESCAPES.get(char) or f"\\x{ord(char):02x}"

    return _CONTROL.sub(escape, "" if text is None else str(text))


def copy_query(task: Task) -> str:
    """The New task form's address, filled in with a command task's settings."""
    import shlex

    params = {"command": shlex.join(task.argv), "name": task.name, "queue": task.queue,
              "tenant": task.tenant, "priority": str(task.priority) if task.priority else None,
              "timeout": f"{task.timeout:g}" if task.timeout else None, "cwd": task.cwd,
              "meta": json.dumps(task.meta, ensure_ascii=False) if task.meta else None}
    return query({k: v for k, v in params.items() if v})


def pretty(value: Any) -> str:
    """JSON for a <pre> (escaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def when(ts: float | None) -> dict[str, str] | None:
    """A time for ``<time>``: ISO (the browser shows it in its zone) and UTC text."""
    if ts is None:
        return None
    text = iso(ts) or ""
    return {"iso": text, "utc": text[:19].replace("T", " ") + " UTC"}


def what(task: Task) -> str:
    if task.tracked:
        return f"(tracked, pid {task.pid})"
    if task.function is not None:
        args = json.dumps(task.kwargs or {}, ensure_ascii=False)
        return visible(f"{task.function}({args[1:-1][:300]})")
    import shlex

    return visible(shlex.join(task.argv))
