"""Queues, tenants, cron schedules and servers as clients see and change them.
Mixed into the SQL stores."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import EllipsisType
from typing import Any

from .. import limits
from ..errors import NotFound, TransitionError
from ..lifecycle import Status
from ..limits import Limits
from ..model import JSON, Schedule, Task, iso
from ..rates import Rate, loads, queue_key
from . import rows
from .base import Instance, Owner
from .sql import ACTIVE_IN, LIVE_IN, Cursor, SqlStoreBase


class AdminStore(SqlStoreBase):
    """Queues, tenants, schedules, servers."""

    # -- queues -------------------------------------------------------------------

    def set_queue_paused(self, name: str, paused: bool) -> None:
        """Pause a queue (its queued tasks are not claimed; running ones go on) or resume it."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, paused) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                        (name, int(paused)))

    def set_queue_parallel(self, name: str, parallel: int | None) -> None:
        """At most ``parallel`` tasks of queue ``name`` run at a time (None: no limit);
        with 1 they run one after another in claim order."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, parallel) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET parallel = excluded.parallel",
                        (name, parallel))

    def set_queue_status_dir(self, name: str, directory: str | None) -> None:
        """The queue's own status directory (None: the server's ``status_dir``)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, status_dir) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET status_dir = excluded.status_dir",
                        (name, directory))

    def set_queue_limits(self, name: str, given: Limits) -> None:
        """The resource limits of the queue's tasks (a task's own override them)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, limits) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET limits = excluded.limits",
                        (name, limits.dumps(given)))

    def set_queue_rate(self, name: str, rate: Rate | None) -> None:
        """At most ``rate.starts`` starts of the queue's tasks per sliding ``rate.period``
        (None: no rate)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, rate) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET rate = excluded.rate",
                        (name, rate.stored() if rate is not None else None))
            if rate is not None:
                from .rates import declare

                declare(cur, queue_key(name), rate)

    def queue_rate(self, name: str) -> Rate | None:
        with self._read_tx() as cur:
            cur.execute("SELECT rate FROM queues WHERE name=?", (name,))
            row = cur.fetchone()
        return loads(row[0] if row else None)

    def set_queue_output(self, name: str, head: int | None, tail: int | None) -> None:
        """The output bounds of the queue's tasks (None: the server's)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO queues (name, output_head, output_tail) VALUES (?, ?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET output_head = excluded.output_head,"
                        " output_tail = excluded.output_tail", (name, head, tail))

    def queue_output(self, name: str) -> tuple[int | None, int | None]:
        with self._read_tx() as cur:
            cur.execute("SELECT output_head, output_tail FROM queues WHERE name=?", (name,))
            row = cur.fetchone()
        return (row[0], row[1]) if row else (None, None)

    def queue_limits(self, name: str) -> Limits:
        with self._read_tx() as cur:
            cur.execute("SELECT limits FROM queues WHERE name=?", (name,))
            row = cur.fetchone()
        return limits.loads(row[0] if row else None)

    def queue_status_dirs(self) -> dict[str, str]:
        with self._read_tx() as cur:
            cur.execute("SELECT name, status_dir FROM queues WHERE status_dir IS NOT NULL")
            return {str(n): str(d) for n, d in cur.fetchall()}

    # -- tenants ----------------------------------------------------------------------

    def add_tenant(self, name: str, *, enabled: bool = True, run_as: str | None = None,
                   parallel: int | None = None) -> dict[str, JSON]:
        with self._tx() as cur:
            cur.execute("INSERT INTO tenants (name, enabled, run_as, parallel, created_at)"
                        " VALUES (?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
                        (name, int(enabled), run_as, parallel, time.time()))
            if cur.rowcount == 0:
                raise TransitionError(f"tenant {name!r} exists already", field="name")
            return self._tenant(cur, name)

    def update_tenant(self, name: str, *, enabled: bool | None = None,
                      run_as: str | None | EllipsisType = ...,
                      parallel: int | None | EllipsisType = ...) -> dict[str, JSON]:
        """Change what is given (``...``: leave as it is; None clears run_as/parallel)."""
        changes: dict[str, object] = {}
        if enabled is not None:
            changes["enabled"] = int(enabled)
        if not isinstance(run_as, EllipsisType):
            changes["run_as"] = run_as
        if not isinstance(parallel, EllipsisType):
            changes["parallel"] = parallel
        with self._tx() as cur:
            if changes:
                cur.execute(f"UPDATE tenants SET {', '.join(f'{c}=?' for c in changes)}"
                            " WHERE name=?", (*changes.values(), name))
            return self._tenant(cur, name)

    def _tenant(self, cur: Cursor, name: str) -> dict[str, JSON]:
        cur.execute("SELECT name, enabled, run_as, parallel, created_at FROM tenants"
                    " WHERE name=?", (name,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {name!r}", field="name")
        return _tenant_json(row)

    def tenants(self) -> list[dict[str, JSON]]:
        """Every tenant with its settings and live task counts."""
        with self._read_tx() as cur:
            cur.execute("SELECT name, enabled, run_as, parallel, created_at FROM tenants"
                        " ORDER BY name")
            found = [_tenant_json(r) for r in cur.fetchall()]
            cur.execute(f"SELECT tenant, status, COUNT(*) FROM tasks WHERE status IN {LIVE_IN}"
                        " GROUP BY tenant, status")
            counts = cur.fetchall()
        by_name = {t["name"]: t for t in found}
        for tenant in found:
            tenant["tasks"] = {s.value: 0 for s in Status if not s.terminal}
        for name, status, count in counts:
            if name in by_name:
                by_name[name]["tasks"][status] = count
        return found

    # -- cron schedules -----------------------------------------------------------------

    def add_schedule(self, sched: Schedule) -> Schedule:
        """Store a new schedule (validated by the caller); its first tick comes after now."""
        from ..cron import next_fire

        with self._tx() as cur:
            self._require_tenant(cur, sched.tenant)
            cur.execute("INSERT INTO schedules (name, expr, tz, tenant, catch_up, max_lag, spec,"
                        " paused, last_tick, next_at, fired, created_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
                        (sched.name, sched.expr, sched.tz, sched.tenant, sched.catch_up,
                         sched.max_lag, rows.schedule_spec(sched.spec), int(sched.paused),
                         sched.created_at, next_fire(sched.expr, sched.tz, sched.created_at),
                         0, sched.created_at))
            if cur.rowcount == 0:
                raise TransitionError(f"schedule {sched.name!r} exists already (cron rm it"
                                      " first)", field="name")
            return self._schedule(cur, sched.name)

    def _schedule(self, cur: Cursor, name: str, *, lock: bool = False) -> Schedule:
        cur.execute(f"SELECT {rows.SCHEDULE_COLUMNS} FROM schedules WHERE name=?"
                    f"{self.ROW_LOCK if lock else ''}", (name,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no schedule {name!r}", field="name")
        return rows.schedule(row)

    def get_schedule(self, name: str) -> Schedule:
        with self._read_tx() as cur:
            return self._schedule(cur, name)

    def schedules(self) -> list[Schedule]:
        with self._read_tx() as cur:
            cur.execute(f"SELECT {rows.SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
            return [rows.schedule(r) for r in cur.fetchall()]

    def remove_schedule(self, name: str) -> None:
        """Fire no more ticks; the tasks it fired stay."""
        with self._tx() as cur:
            cur.execute("DELETE FROM schedules WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"no schedule {name!r}", field="name")

    def set_schedule_paused(self, name: str, paused: bool) -> Schedule:
        """Pause (ticks pass unfired) or resume: ticks missed while paused are not
        caught up; the next one is the first after now."""
        from ..cron import next_fire

        now = time.time()
        with self._tx() as cur:
            sched = self._schedule(cur, name, lock=True)
            if not paused and sched.paused:
                cur.execute("UPDATE schedules SET paused=0, last_tick=?, next_at=? WHERE name=?",
                            (now, next_fire(sched.expr, sched.tz, now), name))
            elif paused:
                cur.execute("UPDATE schedules SET paused=1 WHERE name=?", (name,))
            return self._schedule(cur, name)

    def run_schedule(self, name: str, *, by: str) -> Task:
        """Fire one task of the schedule now, outside its ticks (its tick stays unset)."""
        with self._tx() as cur:
            sched = self._schedule(cur, name)
            return self._submit(cur, sched.spec, by=by, schedule=name)

    # -- servers, seen from a client -------------------------------------------

    def instances(self) -> list[Instance]:
        """Servers that have not stopped (nor been fenced), oldest first."""
        with self._read_tx() as cur:
            cur.execute("SELECT id, host, boot_id, pid, slots, started_at, heartbeat_at,"
                        " stopped_at, stop_request FROM instances WHERE stopped_at IS NULL"
                        " ORDER BY started_at")
            return [Instance(*r) for r in cur.fetchall()]

    def active_owners(self) -> list[Owner]:
        """The servers that own running or paused tasks, with those tasks, in order of
        server id (whether they are alive is for the reader to judge)."""
        with self._read_tx() as cur:
            cur.execute("SELECT t.owner, t.id, i.host, i.boot_id, i.pid, i.heartbeat_at,"
                        " i.stopped_at FROM tasks t LEFT JOIN instances i ON i.id = t.owner"
                        f" WHERE t.status IN {ACTIVE_IN} AND t.owner IS NOT NULL"
                        " ORDER BY t.owner, t.id")
            found = cur.fetchall()
        grouped: dict[str, tuple[list[int], list[Any]]] = {}
        for owner, task_id, *instance in found:
            grouped.setdefault(owner, ([], instance))[0].append(task_id)
        return [Owner(owner, tuple(ids), *instance)
                for owner, (ids, instance) in grouped.items()]

    def request_stop(self, instance_id: str, mode: str) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE instances SET stop_request=? WHERE id=? AND stopped_at IS NULL",
                        (mode, instance_id))
            if cur.rowcount == 0:
                raise NotFound(f"no running server instance {instance_id}")


def _tenant_json(row: Sequence[Any]) -> dict[str, JSON]:
    return {"name": row[0], "enabled": bool(row[1]), "run_as": row[2], "parallel": row[3],
            "created_at": iso(row[4]) if row[4] else None}
