"""A store of many tasks with a known history, filled with set-based SQL through the
store's own transaction (a submit at a time would take minutes), and the statistics
that history must give, worked out here in Python from the same formulas.

Task ``x`` (1..n) is submitted at ``BASE + x / 16``, waits ``x % 7 + 0.5`` s queued,
runs ``(x % 11) * 2 + 0.25`` s, in queue ``QUEUES[x % 3]``, tenant ``acme`` when
``x % 4 == 0`` (else ``default``); by ``x % 20``: 0-13 succeed, 14-15 fail (exit), 16
fails (timeout), 17 is killed while running, 18 still runs (using ``1000 + x % 500``
KiB, unsampled when ``x % 100 == 98``), 19 is still queued (``x % 40 == 19``) or was
cancelled while queued. Every task goes in through the ``tasks`` table, so the store's
triggers write the events and keep the counts, as they do for real tasks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NOW = 1_700_000_000.0
BASE = NOW - 6400.0
QUEUES = ("default", "emails", "reports")
_RAN = ("ok", "exit", "timeout", "killed", "running")


def kind(x: int) -> str:
    r = x % 20
    if r < 14:
        return "ok"
    if r < 16:
        return "exit"
    return {16: "timeout", 17: "killed", 18: "running"}.get(r) or (
        "queued" if x % 40 == 19 else "cancel")


def times(x: int) -> tuple[float, float, float]:
    """(submitted, started, ended)."""
    created = BASE + x * 0.0625
    started = created + (x % 7) + 0.5
    return created, started, started + (x % 11) * 2 + 0.25


def queue_of(x: int) -> str:
    return QUEUES[x % 3]


def tenant_of(x: int) -> str:
    return "acme" if x % 4 == 0 else "default"


def rss_of(x: int) -> int | None:
    return None if x % 100 == 98 else 1000 + x % 500


def _mod(sql: str) -> str:
    """``a % b`` as ``(a - a / b * b)``: integer division in both stores (the shared SQL
    may hold no literal %, which psycopg would read as a placeholder)."""
    return re.sub(r"(\{x_of\}|x) % (\d+)", r"(\1 - \1 / \2 * \2)", sql)


def fill(store: Any, n: int) -> None:
    """Insert ``n`` tasks with the history above into an empty ``store``."""
    x_of = f"CAST((created_at - {BASE!r}) * 16 AS INTEGER)"  # put in after _mod
    kind_sql = ("CASE WHEN x % 20 < 14 THEN 'ok' WHEN x % 20 < 16 THEN 'exit'"
                " WHEN x % 20 = 16 THEN 'timeout' WHEN x % 20 = 17 THEN 'killed'"
                " WHEN x % 20 = 18 THEN 'running' WHEN x % 40 = 19 THEN 'queued'"
                " ELSE 'cancel' END")
    queue_sql = ("CASE x % 3 WHEN 0 THEN 'default' WHEN 1 THEN 'emails'"
                 " ELSE 'reports' END")
    created = f"({BASE!r} + x * 0.0625)"
    started = f"({created} + x % 7 + 0.5)"
    ran = "(" + ", ".join(f"'{k}'" for k in _RAN) + ")"
    statements = [
        "INSERT INTO tasks (name, queue, tenant, status, argv, env, meta, created_at,"
        " started_at, finished_at, changed_by, changed_at)"
        f" WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n})"
        f" SELECT {kind_sql}, {queue_sql},"
        " CASE WHEN x % 4 = 0 THEN 'acme' ELSE 'default' END, 'queued', '[\"true\"]',"
        f" '{{}}', '{{}}', {created}, {started}, {started} + (x % 11) * 2 + 0.25, 'fill',"
        f" {created} FROM s",
        "UPDATE tasks SET status = 'running', epoch = 1, owner = 'fill',"
        f" changed_at = started_at WHERE name IN {ran}",
        "INSERT INTO attempts (task_id, epoch, owner, run_tag, started_at, rss_kib, rss_at)"
        " SELECT id, 1, 'fill', 'fill', started_at,"
        " CASE WHEN name = 'running' AND {x_of} % 100 <> 98 THEN 1000 + {x_of} % 500 END,"
        f" CASE WHEN name = 'running' AND {{x_of}} % 100 <> 98 THEN {NOW - 1!r} END"
        " FROM tasks WHERE status = 'running'",
        "UPDATE tasks SET status = CASE name WHEN 'ok' THEN 'succeeded' WHEN 'killed'"
        " THEN 'stopped' ELSE 'failed' END, reason = CASE name WHEN 'ok' THEN NULL"
        " WHEN 'killed' THEN 'killed' ELSE name END, changed_at = finished_at"
        " WHERE status = 'running' AND name <> 'running'",
        "UPDATE tasks SET status = 'stopped', reason = 'killed', finished_at = started_at,"
        " changed_at = started_at, started_at = NULL WHERE name = 'cancel'",
        "UPDATE attempts SET finished_at = t.finished_at FROM (SELECT id, finished_at"
        " FROM tasks WHERE status IN ('succeeded', 'failed', 'stopped')) t"
        " WHERE attempts.task_id = t.id",
        "UPDATE tasks SET finished_at = NULL WHERE name IN ('running', 'queued')",
        "UPDATE tasks SET started_at = NULL WHERE name = 'queued'",
    ]
    with store._tx() as cur:
        for sql in statements:
            cur.execute(_mod(sql).replace("{x_of}", x_of))


class Expected:
    """One group's numbers, gathered the plain way."""

    def __init__(self) -> None:
        self.tasks: dict[str, int] = {}
        self.submitted = self.started = 0
        self.finished = {"succeeded": 0, "failed": 0, "stopped": 0}
        self.failures: dict[str, int] = {}
        self.waits: list[float] = []
        self.runs: list[float] = []
        self.rss: list[tuple[int, int | None]] = []

    def submit(self) -> None:
        self.submitted += 1

    def start(self, wait: float) -> None:
        self.started += 1
        self.waits.append(wait)

    def end(self, status: str, reason: str | None, run: float | None) -> None:
        self.finished[status] += 1
        if reason is not None:
            self.failures[reason] = self.failures.get(reason, 0) + 1
        if run is not None:
            self.runs.append(run)


_STATUS = {"ok": "succeeded", "exit": "failed", "timeout": "failed", "killed": "stopped",
           "running": "running", "queued": "queued", "cancel": "stopped"}


def expected(n: int, since: float, until: float, *, queue: str | None = None,
             tenant: str | None = None) -> tuple[Expected, dict[str, Expected],
                                                 dict[str, Expected], dict[str, list[int]]]:
    """(everything, per queue, per tenant, per minute) of the window ``[since, until)``;
    rss lists hold (x, KiB)."""
    total: Expected = Expected()
    queues: dict[str, Expected] = {}
    tenants: dict[str, Expected] = {}
    minutes = -(-int(until - since) // 60)
    series = {k: [0] * minutes for k in ("submitted", "started", "finished")}
    for x in range(1, n + 1):
        q, t = queue_of(x), tenant_of(x)
        if (queue and q != queue) or (tenant and t != tenant):
            continue
        groups = (total, queues.setdefault(q, Expected()), tenants.setdefault(t, Expected()))
        _one(x, groups, series, since, until)
    return total, queues, tenants, series


def _one(x: int, groups: tuple[Expected, ...], series: dict[str, list[int]], since: float,
         until: float) -> None:
    """Task ``x``'s part in the numbers of its groups."""
    k = kind(x)
    created, started, ended = times(x)
    for g in groups:
        g.tasks[_STATUS[k]] = g.tasks.get(_STATUS[k], 0) + 1
        if k == "running":
            g.rss.append((x, rss_of(x)))
    steps: list[tuple[str, float, Callable[[Expected], None]]] = [
        ("submitted", created, Expected.submit)]
    if k == "cancel":  # cancelled when it would have started
        steps.append(("finished", started, lambda g: g.end("stopped", None, None)))
    if k in _RAN:
        steps.append(("started", started, lambda g: g.start(started - created)))
    if k in _RAN and k != "running":
        failed = _STATUS[k] == "failed"
        steps.append(("finished", ended,
                      lambda g: g.end(_STATUS[k], k if failed else None, ended - started)))
    for which, at, act in steps:
        if since <= at < until:
            series[which][int((at - since) // 60)] += 1
            for g in groups:
                act(g)
