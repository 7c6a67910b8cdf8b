"""Resource limits of a task (``--memory-limit 512M --cpu-limit 60s --files-limit N
--procs-limit N``): parsing, checking, storing, merging a task's with its queue's. Pure.

The server applies them (``server/rlimits.py``, and the worker for function tasks).
"""

from __future__ import annotations

import json
import math
import re
from typing import NamedTuple

from .errors import InvalidInput

KINDS = ("memory", "cpu", "files", "procs")
#: the CLI flag (and HTTP field) of each kind, for messages
FLAGS = {"memory": "memory-limit", "cpu": "cpu-limit", "files": "files-limit",
         "procs": "procs-limit"}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MIN_MEMORY = 4096  #: one page (a program needs far more: its exec fails)
MAX_MEMORY = 1 << 50
MAX_CPU = 100 * 365 * 86400
MAX_COUNT = 1 << 30


class Limits(NamedTuple):
    """What a task may use; None: no limit of that kind."""

    memory: int | None = None  #: bytes (RLIMIT_AS, or a cgroup's memory.max)
    cpu: int | None = None  #: seconds of CPU time, whole (RLIMIT_CPU)
    files: int | None = None  #: open files (RLIMIT_NOFILE)
    procs: int | None = None  #: processes of its user (RLIMIT_NPROC)

    @property
    def any(self) -> bool:
        return any(v is not None for v in self)

    def to_json(self) -> dict[str, int]:
        """The limits that are set (``memory`` in bytes, ``cpu`` in seconds)."""
        return {k: v for k, v in self._asdict().items() if v is not None}

    def describe(self) -> str:
        """``memory 512M, cpu 60s`` (empty when none is set)."""
        return ", ".join(f"{k} {text(k, v)}" for k, v in self.to_json().items())


NONE = Limits()


def text(kind: str, value: int) -> str:
    """A limit as people write it: ``512M``, ``60s``, ``64``."""
    if kind == "memory":
        return size_text(value)
    return f"{value}s" if kind == "cpu" else str(value)


def size_text(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        value = size / _SIZE_UNITS[unit.lower()]
        if value >= 1 and (value * 10).is_integer():
            return f"{value:g}{unit}"
    return str(size)


def size_value(value: object, field: str, examples: str) -> int:
    """A size given as bytes (an int) or text (``512M``, ``1.5G``; units are powers of
    1024), its range not checked; anything else is an error naming ``examples``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _size_of(value, field)
    raise InvalidInput(f"{field} must be a size such as {examples} or a number of bytes",
                       field=field)


def parse_size(value: object, field: str = "memory-limit") -> int:
    """``512M``, ``1G``, ``1.5G``, ``100K``, ``4096`` (bytes; units are powers of 1024)."""
    size = size_value(value, field, "512M")
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise InvalidInput(f"{field} must be from 4K to 1024T", field=field)
    return size


_SIZE = re.compile(r"(\d+(?:\.\d+)?)([kmgt]?)(?:i?b)?", re.ASCII | re.IGNORECASE)


def _size_of(raw: str, field: str) -> int:
    found = _SIZE.fullmatch(raw.strip())
    if found is None:
        raise InvalidInput(f"invalid {field} {raw!r}: use e.g. 512M, 1.5G, 100K or bytes",
                           field=field)
    return int(float(found[1]) * _SIZE_UNITS[found[2].lower()])


def parse_cpu(value: object, field: str = "cpu-limit") -> int:
    """``60s``, ``2m``, ``1h`` or a number of seconds: whole seconds of CPU time, a
    fraction rounded up (the kernel counts this limit in seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        from .validate import parse_duration

        seconds = parse_duration(value, field)
    else:
        raise InvalidInput(f"{field} must be a duration such as 60s or a number of seconds",
                           field=field)
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_CPU):
        raise InvalidInput(f"{field} must be more than 0 seconds (and at most 100 years)",
                           field=field)
    return max(1, math.ceil(seconds))


def parse_count(value: object, field: str) -> int:
    """A whole number of files or processes, 1 or more."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_COUNT}", field=field)
    return value


_PARSERS = {"memory": parse_size, "cpu": parse_cpu, "files": parse_count,
            "procs": parse_count}


def parse(given: dict[str, object], prefix: str = "") -> Limits:
    """Limits from user values by kind (``{"memory": "512M", "cpu": 60}``); None or a
    missing kind is no limit. ``prefix`` goes before the field named in errors."""
    unknown = sorted(set(given) - set(KINDS))
    if unknown:
        raise InvalidInput(f"unknown limit {unknown[0]!r}: the limits are"
                           f" {', '.join(KINDS)}", field=f"{prefix}{unknown[0]}")
    return Limits(**{kind: None if given.get(kind) is None else
                     _PARSERS[kind](given[kind], f"{prefix}{kind}" if prefix else FLAGS[kind])
                     for kind in KINDS})


def check(limits: object) -> Limits:
    """A Limits handed in by code (API): each value of its kind and range."""
    if not isinstance(limits, Limits):
        raise InvalidInput("limits must be a Limits", field="limits")
    return parse(limits._asdict())


def dumps(limits: Limits) -> str | None:
    """As stored: a JSON object of the limits that are set (None for none)."""
    return json.dumps(limits.to_json(), separators=(",", ":")) if limits.any else None


def loads(stored: str | None) -> Limits:
    """Stored limits back (json only; kinds this version does not know are ignored)."""
    if not stored:
        return NONE
    found = json.loads(stored)
    return Limits(**{k: int(found[k]) for k in KINDS if isinstance(found.get(k), int)})


def merge(own: Limits, queue: Limits) -> Limits:
    """The task's own limits, and its queue's where it set none."""
    return Limits(*(mine if mine is not None else theirs for mine, theirs in zip(own, queue,
                                                                                 strict=True)))


def effective(own: str | None, queue: str | None) -> Limits | None:
    """The limits a claimed task runs with (None: none, the common, cheap case)."""
    if own is None and queue is None:
        return None
    merged = merge(loads(own), loads(queue))
    return merged if merged.any else None
