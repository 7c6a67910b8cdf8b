"""Durations, times, signal names and id lists as people type them, to values.
Raises :class:`InvalidInput` (naming the field) and changes nothing; re-exported by
:mod:`taskyard.validate`, where the other checks of user input live."""

from __future__ import annotations

import math
import signal as _signal

from .errors import InvalidInput


def parse_signal(value: str | int) -> int:
    """``TERM``, ``SIGTERM``, ``term`` or ``15`` to a signal number; 0 and unknown are errors."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        number = int(text)
        valid = {int(s) for s in _signal.valid_signals()}
        if number not in valid or number == 0:
            raise InvalidInput(f"unknown signal number {text}", field="signal")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        raise InvalidInput(f"unknown signal {text!r}", field="signal") from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str = "in") -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` (or a sum: ``1h30m``) to seconds."""
    raw = text.strip().lower()
    if not raw or not raw.isascii():
        raise InvalidInput(f"invalid duration {text!r}: use e.g. 30s, 10m, 2h, 1d", field=what)
    total, number = 0.0, ""
    for char in raw:
        if char.isdigit() or char == ".":
            number += char
        elif char in _UNITS and number:
            total += _to_float(number, text, what) * _UNITS[char]
            number = ""
        else:
            raise InvalidInput(f"invalid duration {text!r}: use e.g. 30s, 10m, 2h, 1d",
                               field=what)
    if number:
        total += _to_float(number, text, what)
    if total > 100 * 365 * 86400:
        raise InvalidInput(f"duration {text!r} is too long", field=what)
    return total


def _to_float(number: str, text: str, what: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise InvalidInput(f"invalid duration {text!r}", field=what) from None


def parse_time(text: str, what: str = "at") -> float:
    """ISO 8601 (``2026-11-23T10:00:00Z``, ``2026-11-23 10:00+01:00``; no zone: local
    time) to a unix time."""
    from datetime import datetime

    raw = text.strip()
    if not raw.isascii() or len(raw) > 64:
        raise InvalidInput(f"invalid time {text!r}: use ISO 8601", field=what)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        stamp = when.timestamp()  # a local time near year 1 or 9999 can fall outside them
    except (ValueError, OverflowError):
        raise InvalidInput(f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-23T10:00:00Z",
                           field=what) from None
    return check_time(stamp, what)


#: Unix times every ISO 8601 rendering can show: years 1 to 9999, UTC.
MIN_TIME, MAX_TIME = -62135596800.0, 253402300799.0


def check_time(stamp: float, what: str = "at") -> float:
    """A unix time within years 1-9999 (so it can always be shown as ISO 8601)."""
    if not (math.isfinite(stamp) and MIN_TIME <= stamp <= MAX_TIME):
        raise InvalidInput("start time must be within the years 1 to 9999 (UTC)", field=what)
    return stamp


def parse_ids(text: str, what: str) -> tuple[int, ...]:
    """``3,5,8`` to task ids."""
    ids = []
    for part in (p.strip() for p in text.split(",")):
        if not (part.isascii() and part.isdigit()) or len(part) > 18 or int(part) == 0:
            raise InvalidInput(f"--{what}: {part!r} is not a task id", field=what)
        ids.append(int(part))
    return tuple(ids)
