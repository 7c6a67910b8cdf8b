"""Rate limits: at most N starts per sliding PERIOD for a key. Parsing and wording; pure.

A task may name one key (``--rate-limit api=10/1m``); a queue may have a rate
(``queue set Q --rate 100/1m``), whose key is the queue. The store counts the starts
of each key in the window ending now, inside the claiming transaction (see
``store/rates.py``).

Stored forms: a rate is the text ``N/SECONDS`` (``10/60``) in ``tasks.rate`` and
``queues.rate``; a task's key in ``tasks.rate_key``; the starts under
``rate_starts.key`` as ``k:<key>`` for a task's key and ``q:<queue>`` for a queue's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .errors import InvalidInput

MAX_STARTS = 1_000_000  #: N at most
MAX_PERIOD = 7 * 86400.0  #: a week: the starts of a key are kept this long at most
_HELP = "use N/PERIOD, e.g. 100/1m, 5/30s, 1000/1h"


class Rate(NamedTuple):
    """At most ``starts`` starts in any ``period`` seconds."""

    starts: int
    period: float

    def stored(self) -> str:
        return f"{self.starts}/{self.period:g}"

    def describe(self) -> str:
        """``10/1m``, ``5/30s``, ``2/1.5s``: as a user would type it."""
        return f"{self.starts}/{period_text(self.period)}"


class RateLimit(NamedTuple):
    """A task's own rate limit: its key and the rate it starts under."""

    key: str
    rate: Rate

    def describe(self) -> str:
        return f"{self.key}={self.rate.describe()}"


def period_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_rate(value: object, field: str = "rate") -> Rate:
    """``100/1m``, ``5/30s``, ``10/m`` (a unit alone is one of it), ``3/2.5`` (seconds)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string N/PERIOD ({_HELP})", field=field)
    count, slash, period = value.strip().partition("/")
    if not slash or not count.strip().isascii() or not count.strip().isdigit():
        raise InvalidInput(f"invalid {field} {value!r}: {_HELP}", field=field)
    starts = int(count)
    if not 1 <= starts <= MAX_STARTS:
        raise InvalidInput(f"invalid {field} {value!r}: N must be from 1 to {MAX_STARTS:,}",
                           field=field)
    return Rate(starts, _period(period.strip(), value, field))


def _period(text: str, value: str, field: str) -> float:
    from .validate import parse_duration

    if text[:1].isalpha():
        text = "1" + text  # "10/m": ten a minute
    try:
        seconds = parse_duration(text, field) if text else 0.0
    except InvalidInput:
        raise InvalidInput(f"invalid {field} {value!r}: {_HELP}", field=field) from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_PERIOD):
        raise InvalidInput(f"invalid {field} {value!r}: the period must be more than 0 s"
                           " and at most 7d", field=field)
    return seconds


def parse_rate_limit(value: object, field: str = "rate_limit") -> RateLimit:
    """``KEY=N/PERIOD``: ``api=10/1m``."""
    if isinstance(value, RateLimit):
        return RateLimit(_key(value.key, field), parse_rate(value.rate.describe(), field))
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string KEY=N/PERIOD", field=field)
    key, eq, rate = value.partition("=")
    if not eq:
        raise InvalidInput(f"invalid {field} {value!r}: use KEY=N/PERIOD, e.g. api=10/1m",
                           field=field)
    return RateLimit(_key(key.strip(), field), parse_rate(rate, field))


def _key(key: str, field: str) -> str:
    from .validate import check_name

    if not key or any(c.isspace() for c in key):
        raise InvalidInput(f"{field}: the key must be given, without spaces", field=field)
    return str(check_name(key, field))


def loads(stored: str | None) -> Rate | None:
    """A rate as stored (``N/SECONDS``), or None."""
    if not stored:
        return None
    starts, _, period = stored.partition("/")
    return Rate(int(starts), float(period))


def task_key(key: str) -> str:
    return f"k:{key}"


def queue_key(queue: str) -> str:
    return f"q:{queue}"


class Window(NamedTuple):
    """A key's starts in the window that ends now, against one rate."""

    key: str  #: as stored (``k:api``, ``q:default``)
    rate: Rate
    starts: int  #: starts in the last ``rate.period`` seconds
    frees_at: float | None  #: when a start becomes possible again, if it is full now

    @property
    def full(self) -> bool:
        return self.frees_at is not None

    def describe(self, now: float) -> str:
        """The held-back sentence ``why`` and ``show`` give."""
        kind, _, name = self.key.partition(":")
        what = f"queue {name!r}" if kind == "q" else f"key {name!r}"
        text = (f"rate limit of {what} ({self.rate.describe()}): {self.starts} start(s) in"
                f" the last {period_text(self.rate.period)}")
        if self.frees_at is not None:
            text += f"; the next start is possible in {max(0.0, self.frees_at - now):.1f} s"
        return text


def rate_text(stored: str | None) -> str | None:
    """A stored rate as a user types it (``100/1m``), or None."""
    rate = loads(stored)
    return rate.describe() if rate is not None else None
