"""Cron schedules: validate cron expressions and time zones, and work out fire times.

Pure: no I/O beyond reading the system's time zone data, no SQL and no clock of its
own. Every instant is passed in and returned as UTC epoch seconds (a float; fire
times are whole seconds), so callers test it with a fake clock. Expressions are
evaluated by the ``cronsim`` library (which follows Debian's cron); this module
only normalises, validates and wraps it.

Expressions
-----------
Five fields, ``minute hour day-of-month month day-of-week``, with ``*``, lists
(``1,15``), ranges (``1-5``), steps (``*/15``, ``10-50/20``) and the names
``JAN``-``DEC`` and ``SUN``-``SAT`` (any case); day-of-week 0 and 7 are both
Sunday. When both day fields are restricted (neither starts with ``*``) a day
matches if *either* does, as in Debian's cron. The aliases ``@yearly``
(``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly`` stand for ``0 0 1 1 *``, ``0 0 1 * *``, ``0 0 * * 0``, ``0 0 * * *``
and ``0 * * * *``. cronsim's extensions are accepted in five-field form: ``L``
(last day of the month) and ``LW`` (last weekday of the month) as the
day-of-month, ``5L`` (last Friday) and ``MON#2`` (second Monday) in the
day-of-week field; ``W`` on its own (nearest weekday) and ``?`` are not.
Not accepted: a sixth (seconds) field, ``@reboot`` (schedules follow the clock,
not server restarts), and expressions that never fire (``0 0 30 2 *``).

Daylight saving time
--------------------
A schedule's fields are matched against local wall-clock time in its zone.
What happens when the clocks change is cronsim's (Debian cron's) behaviour,
which depends on the minute and hour fields:

*Fixed-time jobs*: neither the minute nor the hour field starts with ``*``
(``30 2 * * *``, ``0 9 * * 1-5``, ``15 1,13 * * *``, ``@daily``, ``@weekly``,
``@monthly``, ``@yearly``). Each matching wall-clock time fires exactly once a
day, even when the clocks change:

- Spring-forward gap (America/New_York 2026-03-08 02:00-03:00 EST->EDT,
  Europe/Berlin 2026-03-29 02:00-03:00 CET->CEST): a tick whose wall time does
  not exist fires at the first instant after the gap, 03:00 local. ``30 2 * * *``
  fires once that day, at 03:00 EDT (07:00 UTC) in New York and at 03:00 CEST
  (01:00 UTC) in Berlin. Ticks moved onto the same instant fire once: ``0,30 2 *
  * *`` fires once at 03:00, and ``0 2,3 * * *`` once at 03:00, not twice.
- Fall-back repeated hour (New York 2026-11-01 01:00-02:00 occurs twice, EDT
  then EST; Berlin 2026-10-25 02:00-03:00, CEST then CET): a wall time that
  occurs twice fires once, at its first occurrence (the earlier, summer-time
  instant). ``30 1 * * *`` fires in New York at 01:30 EDT (05:30 UTC) only;
  ``30 2 * * *`` in Berlin at 02:30 CEST (00:30 UTC) only.

*All other jobs*: the minute or the hour field starts with ``*`` (``*/15 * *
* *``, ``0 * * * *``, ``@hourly``, ``0 */2 * * *``, ``* 3 * * *``). These are
scheduled normally, by real elapsed time: they fire at every real instant whose
local wall time matches.

- In the gap the missing wall times do not occur, so they are skipped:
  ``0 * * * *`` fires 23 times on New York's spring-forward day (no 02:00), and
  ``*/15 * * * *`` fires at 01:45 EST and next at 03:00 EDT, 15 real minutes
  later. (``*/15 2 * * *`` does not fire at all that day.)
- In the repeated hour both passes match, and each instant fires: ``0 * * *
  *`` fires 25 times on 2026-11-01 in New York (at 01:00 EDT and again at 01:00
  EST, an hour later), and ``*/15 * * * *`` fires every 15 real minutes right
  through, 8 times from 01:00 EDT to 01:45 EST.

One correction on top of cronsim: started from an instant inside the second
pass of a repeated hour, cronsim evaluates a fixed-time job from the bare wall
time and can return the first-pass occurrence, which is *earlier* than the
start. :func:`next_fire` skips such results (and anything not after the
previous fire), so it is always strictly after ``after`` and a fixed-time tick
already passed is never fired again.

UTC (the default elsewhere) has no DST: every tick is a plain instant.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from taskyard.errors import InvalidInput

__all__ = [
    "ALIASES",
    "GRACE",
    "MAX_CATCH_UP",
    "MAX_EXPR",
    "MAX_ZONE",
    "CatchUp",
    "check_expr",
    "check_zone",
    "due",
    "fires_between",
    "next_fire",
]

MAX_EXPR = 200
"""Longest cron expression accepted, in characters (after normalising whitespace)."""

MAX_ZONE = 64
"""Longest time zone name accepted."""

MAX_CATCH_UP = 1000
"""Most ticks :func:`due` returns at once (the most recent ones)."""

GRACE = 60.0
"""How late (seconds) a tick may be and still count as on time for ``CatchUp.NONE``."""

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or LW"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, 5L, MON#2"),
)
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
# Where check_expr starts looking for a first fire. cronsim gives up when it finds
# no match within 50 years; every five-field expression that fires at all fires
# at least once in any 50 years (the rarest, 29 February on a given weekday,
# recurs within 40).
_PROBE_FROM = datetime(2000, 1, 1)


class CatchUp(StrEnum):
    """What to do with ticks missed while nothing was polling (see :func:`due`)."""

    NONE = "none"
    ONE = "one"
    ALL = "all"


def _bad_expr(message: str) -> InvalidInput:
    return InvalidInput(message, field="expr")


def check_expr(expr: str) -> str:
    """Validate a cron expression and return it normalised.

    Normalising strips it and collapses runs of whitespace to one space, and
    lower-cases an alias (``@Daily`` -> ``@daily``); field text keeps its case.
    See the module docstring for the syntax accepted.

    Raises :class:`InvalidInput` (field ``"expr"``) with a one-line message when
    it is empty, longer than :data:`MAX_EXPR`, not plain ASCII (non-ASCII digits
    such as ``'٣'`` too), has other than five fields (a six-field, seconds
    expression included) and is no known alias, has a value out of range
    (``61 * * * *``), a zero step (``*/0``), a reversed range (``5-1``) or
    anything else cronsim rejects, is ``@reboot``, or never fires
    (``0 0 30 2 *``).
    """
    return _compile(expr)[0]


@lru_cache(maxsize=512)
def _compile(expr: str) -> tuple[str, str]:
    """``(normalised expression, the five-field form given to cronsim)``."""
    norm = " ".join(expr.split())
    if not norm:
        raise _bad_expr("cron expression is empty")
    if len(norm) > MAX_EXPR:
        raise _bad_expr(f"cron expression is too long ({len(norm)} characters, at most {MAX_EXPR})")
    if not norm.isascii():
        raise _bad_expr(
            "cron expression must be plain ASCII (digits 0-9, names such as MON or JAN, * , - / L #)")
    if norm.startswith("@"):
        alias = norm.lower()
        if alias == "@reboot":
            raise _bad_expr("@reboot is not supported: schedules follow the clock, not server restarts")
        if alias not in ALIASES:
            raise _bad_expr(f"unknown cron alias {norm!r} (known: {', '.join(ALIASES)})")
        return alias, ALIASES[alias]
    parts = norm.split(" ")
    if len(parts) == 6:
        raise _bad_expr(f"cron expression {norm!r} has 6 fields: a seconds field is not supported")
    if len(parts) != 5:
        raise _bad_expr(
            f"cron expression {norm!r} has {len(parts)} field{'s' if len(parts) != 1 else ''}; "
            "it needs 5 (minute hour day-of-month month day-of-week) or an alias such as @daily")
    try:
        first = next(CronSim(norm, _PROBE_FROM), None)
    except CronSimError as exc:
        raise _explain(norm, parts, str(exc)) from None
    except (AssertionError, TypeError, ValueError):  # a cronsim bug on odd input; still bad input
        raise _bad_expr(f"invalid cron expression {norm!r}") from None
    if first is None:
        raise _bad_expr(f"cron expression {norm!r} never fires")
    return norm, norm


def _explain(norm: str, parts: list[str], message: str) -> InvalidInput:
    """Turn cronsim's terse ``Bad <field>`` into a message naming the field and value."""
    for index, (name, allowed) in enumerate(_FIELDS):
        if message != f"Bad {name}":
            continue
        if name == "day-of-month" and _fires_in_some_month(parts):
            # cronsim reports an impossible day and month pair ("31 2") as a bad day.
            return _bad_expr(
                f"cron expression {norm!r} never fires: day {parts[2]} does not occur "
                f"in month {parts[3]}")
        return _bad_expr(
            f"invalid {name} field {parts[index]!r} in cron expression {norm!r} (allowed: {allowed})")
    return _bad_expr(f"invalid cron expression {norm!r} ({message})")


def _fires_in_some_month(parts: list[str]) -> bool:
    try:
        CronSim(" ".join([*parts[:3], "*", parts[4]]), _PROBE_FROM)
    except (CronSimError, AssertionError, TypeError, ValueError):
        return False
    return True


def check_zone(tz: str) -> str:
    """Validate an IANA time zone name (``Europe/Berlin``, ``UTC``) and return it.

    Raises :class:`InvalidInput` (field ``"tz"``) for an empty name, one longer
    than :data:`MAX_ZONE`, one with characters no zone name has (so no paths such
    as ``../etc`` or ``/etc/passwd``), ``localtime`` (it means the server's zone,
    whatever that is), and any name ``zoneinfo`` does not know.
    """
    _zone(tz)
    return tz


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    if not tz:
        raise InvalidInput("time zone is empty (use an IANA name such as UTC)", field="tz")
    if len(tz) > MAX_ZONE:
        raise InvalidInput(f"time zone name is too long (at most {MAX_ZONE} characters)", field="tz")
    unknown = InvalidInput(
        f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin or UTC)", field="tz")
    if not _ZONE_NAME.fullmatch(tz) or tz == "localtime":
        raise unknown
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None


def _ticks(cron: str, zone: ZoneInfo, after: float) -> Iterator[float]:
    """Fire times strictly after ``after``, ascending, as whole UTC epoch seconds.

    ``cron`` is a five-field expression that passed :func:`_compile`.
    """
    # Whole seconds: cronsim drops microseconds and starts one second on, and
    # every fire time is a whole second, so nothing after ``after`` is missed.
    it = CronSim(cron, datetime.fromtimestamp(math.floor(after), zone))
    previous = after
    while True:
        try:
            tick = next(it).timestamp()
        except StopIteration:  # no fire within 50 years; check_expr rules this out
            raise _bad_expr(f"cron expression {cron!r} does not fire within 50 years") from None
        # cronsim can step back into the first pass of a repeated hour (see the
        # module docstring); such a tick lies before ``after`` or was already given.
        if tick > previous:
            previous = tick
            yield tick


def next_fire(expr: str, tz: str, after: float) -> float:
    """The first fire time strictly after ``after`` (UTC epoch seconds), as UTC epoch seconds.

    The result is a whole number of seconds. ``expr`` and ``tz`` are validated as
    by :func:`check_expr` and :func:`check_zone`.
    """
    return next(_ticks(_compile(expr)[1], _zone(tz), after))


def fires_between(expr: str, tz: str, start: float, end: float, limit: int = 1000) -> list[float]:
    """Fire times ``t`` with ``start < t <= end``, ascending, at most ``limit`` of them.

    When there are more than ``limit``, the *last* ``limit`` are returned (a
    caller catching up wants the most recent). The cost follows the number of
    ticks returned, not the length of the interval: when the interval holds many
    more than ``limit`` ticks, it looks back from ``end`` over a window that
    grows until it holds ``limit`` of them or reaches ``start``.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    cron, zone = _compile(expr)[1], _zone(tz)
    if limit == 0 or end <= start:
        return []
    budget = 4 * limit + 16
    found, last_seen = _collect(cron, zone, start, end, limit, budget)
    if last_seen is None:  # reached ``end``
        return found
    # Too many: look back from ``end`` over a window sized by the density seen.
    width = max(60.0, (last_seen - start) * limit / budget * 1.25)
    while True:
        low = max(start, end - width)
        found, _ = _collect(cron, zone, low, end, limit, None)
        if len(found) >= limit or low <= start:
            return found
        width = max(2 * width, width * limit / len(found) * 1.25) if found else 8 * width


def _collect(
    cron: str, zone: ZoneInfo, low: float, end: float, limit: int, budget: int | None
) -> tuple[list[float], float | None]:
    """The last ``limit`` ticks in ``(low, end]``, and None; or, if more than ``budget``
    ticks come before ``end``, stop early and return the last tick seen instead of None."""
    found: deque[float] = deque(maxlen=limit)
    for count, tick in enumerate(_ticks(cron, zone, low)):
        if tick > end:
            break
        if budget is not None and count >= budget:
            return list(found), tick
        found.append(tick)
    return list(found), None


def due(
    expr: str,
    tz: str,
    *,
    last: float,
    now: float,
    catch_up: CatchUp,
    max_lag: float | None,
) -> tuple[list[float], float]:
    """What a scheduler must fire now: ``(ticks to fire ascending, new last)``.

    ``last`` is the last tick already accounted for (the previous fire time, or
    when the schedule was made); ``now`` is the current time. Of the ticks in
    ``(last, now]``, the policy picks which to fire; a tick's lag is
    ``now - tick``:

    - ``NONE``: only ticks that are on time, lag <= ``GRACE`` (60 s), and also
      <= ``max_lag`` when that is set. A scheduler polling every few seconds
      fires every tick; after an outage nothing old is fired.
    - ``ONE``: only the latest tick, if its lag is <= ``max_lag`` (``None``: no
      limit).
    - ``ALL``: every tick with lag <= ``max_lag`` (``None``: no limit), at most
      :data:`MAX_CATCH_UP`, the most recent ones.

    ``new_last`` is the latest tick <= ``now``, or ``last`` when none is in
    ``(last, now]`` (a clock that went back fires nothing and keeps ``last``).
    Ticks the policy skips are still accounted for, so they never fire later.
    ``max_lag`` must be ``None`` or >= 0 (``ValueError`` otherwise).
    """
    if max_lag is not None and not max_lag >= 0:
        raise ValueError(f"max_lag must be None or >= 0, got {max_lag}")
    policy = CatchUp(catch_up)
    latest = fires_between(expr, tz, last, now, 1)
    if not latest:
        return [], last
    new_last = latest[0]
    if policy is CatchUp.ONE:
        return (latest if max_lag is None or now - new_last <= max_lag else []), new_last
    lag = max_lag
    if policy is CatchUp.NONE:
        lag = GRACE if max_lag is None else min(GRACE, max_lag)
    if lag is None:
        return fires_between(expr, tz, last, now, MAX_CATCH_UP), new_last
    # Fire times are whole seconds, so a window one second wider holds every tick
    # with lag <= ``lag``; the filter drops the few just outside it.
    ticks = fires_between(expr, tz, max(last, now - lag - 1), now, MAX_CATCH_UP)
    return [tick for tick in ticks if now - tick <= lag], new_last
