"""Rows to records. Stored JSON is parsed with ``json.loads`` only: nothing
stored is ever unpickled or evaluated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import limits, rates
from ..lifecycle import Reason, Status
from ..model import (
    SCHEDULE_SPEC_FIELDS,
    Attempt,
    Event,
    Progress,
    Request,
    Schedule,
    Task,
    TaskSpec,
    spec_value,
)
from ..rates import RateLimit

Row = Sequence[Any]

TASK_COLUMNS = (
    "id, name, queue, status, reason, exit_code, signal, error, argv, env, cwd, meta, "
    "stdin_open, progress_done, progress_total, progress_message, epoch, pid, "
    "created_at, started_at, finished_at, timeout, priority, run_at, retries, retried, unique_key,"
    " mutex, tenant, schedule, fire_at, function, kwargs, result, config, steps, fd_list,"
    " on_finish, hook_for, hook_attempt, keep, limits, rate_key, rate, output_head, output_tail,"
    " tracked"
)
ATTEMPT_COLUMNS = (
    "task_id, epoch, owner, pid, status, reason, exit_code, signal, error, started_at, finished_at,"
    " report, report_message, cpu_user, cpu_system, max_rss_kib, output_head, output_tail,"
    " status_file"
)
EVENT_COLUMNS = "task_id, at, from_status, to_status, by, attempt, detail"
SCHEDULE_COLUMNS = ("name, expr, tz, tenant, catch_up, max_lag, spec, paused, last_tick, next_at,"
                    " fired, created_at")
REQUEST_COLUMNS = "id, task_id, epoch, kind, payload, created_at, state, result"


def _reason(value: str | None) -> Reason | None:
    return Reason(value) if value is not None else None


def task(row: Row) -> Task:
    return Task(
        id=row[0],
        name=row[1],
        queue=row[2],
        status=Status(row[3]),
        reason=_reason(row[4]),
        exit_code=row[5],
        signal=row[6],
        error=row[7],
        argv=tuple(json.loads(row[8])),
        env=json.loads(row[9]),
        cwd=row[10],
        meta=json.loads(row[11]),
        stdin_open=bool(row[12]),
        timeout=row[21],
        priority=row[22],
        run_at=row[23],
        retries=row[24],
        retried=row[25],
        unique=row[26],
        mutex=row[27],
        tenant=row[28],
        schedule=row[29],
        fire_at=row[30],
        function=row[31],
        kwargs=json.loads(row[32]) if row[32] is not None else None,
        result=json.loads(row[33]) if row[33] is not None else None,
        config=json.loads(row[34]),
        steps=json.loads(row[35]) if row[35] is not None else None,
        progress=Progress(row[13], row[14], row[15]),
        attempt=row[16],
        pid=row[17],
        created_at=row[18],
        started_at=row[19],
        finished_at=row[20],
        fds=tuple(int(n) for n in row[36].split(",")) if row[36] else (),
        on_finish=tuple(json.loads(row[37])) if row[37] is not None else None,
        hook_for=(row[38], row[39]) if row[38] is not None else None,
        keep=bool(row[40]),
        limits=limits.loads(row[41]),
        rate_limit=_rate_limit(row[42], row[43]),
        output_head=row[44],
        output_tail=row[45],
        tracked=bool(row[46]),
    )


def _rate_limit(key: str | None, stored: str | None) -> RateLimit | None:
    rate = rates.loads(stored)
    return RateLimit(key, rate) if key is not None and rate is not None else None


def rate_columns(given: RateLimit | None) -> tuple[str | None, str | None]:
    """A task's rate limit as its ``rate_key`` and ``rate`` columns."""
    return (given.key, given.rate.stored()) if given is not None else (None, None)


def fds_json(fds: dict[int, bytes]) -> str | None:
    """Descriptor data as stored: JSON of base64 (None for none)."""
    if not fds:
        return None
    import base64

    return dumps({str(n): base64.b64encode(data).decode() for n, data in sorted(fds.items())})


def fds_list(fds: dict[int, bytes]) -> str | None:
    return ",".join(str(n) for n in sorted(fds)) if fds else None


def attempt(row: Row) -> Attempt:
    return Attempt(
        task_id=row[0],
        epoch=row[1],
        owner=row[2],
        pid=row[3],
        status=Status(row[4]) if row[4] is not None else None,
        reason=_reason(row[5]),
        exit_code=row[6],
        signal=row[7],
        error=row[8],
        started_at=row[9],
        finished_at=row[10],
        report=row[11],
        report_message=row[12],
        cpu_user=row[13],
        cpu_system=row[14],
        max_rss_kib=row[15],
        output_head=row[16],
        output_tail=row[17],
        status_file=row[18],
    )


def event(row: Row) -> Event:
    return Event(
        task_id=row[0],
        at=row[1],
        from_status=Status(row[2]) if row[2] is not None else None,
        to_status=Status(row[3]),
        by=row[4],
        attempt=row[5],
        detail=row[6],
    )


def request(row: Row) -> Request:
    return Request(
        id=row[0],
        task_id=row[1],
        epoch=row[2],
        kind=row[3],
        payload=json.loads(row[4]) if row[4] is not None else None,
        created_at=row[5],
        state=row[6],
        result=row[7],
    )


def dumps(value: Any) -> str:
    """Compact JSON; rejects NaN so stored JSON stays standard."""
    return _ENCODE(value)


#: one encoder for every call (json.dumps makes a new one for each call with options)
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def schedule_spec(spec: TaskSpec) -> str:
    return dumps({k: spec_value(v) for k, v in spec._asdict().items()
                  if k in SCHEDULE_SPEC_FIELDS})


def schedule(row: Row) -> Schedule:
    fields: dict[str, Any] = {k: tuple(v) if k in ("argv", "retry_on", "on_finish")
                              and v is not None else v
                              for k, v in json.loads(row[6]).items() if k in SCHEDULE_SPEC_FIELDS}
    if "limits" in fields:
        fields["limits"] = limits.loads(dumps(fields["limits"]))
    if fields.get("rate_limit") is not None:
        fields["rate_limit"] = rates.parse_rate_limit(fields["rate_limit"])
    spec = TaskSpec(**fields, tenant=row[3])
    return Schedule(name=row[0], expr=row[1], tz=row[2], tenant=row[3], catch_up=row[4],
                    max_lag=row[5], spec=spec, paused=bool(row[7]), last_tick=row[8],
                    next_at=row[9], fired=row[10], created_at=row[11])
