"""Retry policy: which failures are retried, how often, after how long. Pure.

A failed attempt with retries left goes back to ``scheduled`` (verb ``retry``)
and starts again after the backoff. ``crashed`` (the server died while it ran)
is retried only when listed: at-least-once is opt-in.
"""

from __future__ import annotations

import functools
import random

from .errors import InvalidInput
from .lifecycle import Reason

BACKOFFS = ("fixed", "exponential")
RETRYABLE = frozenset({Reason.EXIT, Reason.SIGNAL, Reason.TIMEOUT, Reason.CRASHED, Reason.SPAWN,
                       Reason.EXCEPTION, Reason.REPORTED, Reason.LIMIT})
DEFAULT_ON = (Reason.EXIT, Reason.SIGNAL, Reason.TIMEOUT, Reason.EXCEPTION)
MAX_DELAY = 86400.0
MAX_RETRIES = 1000


@functools.lru_cache(maxsize=64)  # a bulk submit checks the same text for every task
def parse_on(text: str) -> tuple[Reason, ...]:
    """``exit,signal,timeout,crashed,spawn`` to reasons."""
    reasons = []
    for part in text.split(","):
        name = part.strip().lower()
        try:
            reason = Reason(name)
        except ValueError:
            reason = None
        if reason not in RETRYABLE:
            raise InvalidInput(f"--retry-on: {name!r} is not one of"
                               f" {', '.join(sorted(r.value for r in RETRYABLE))}", field="retry_on")
        reasons.append(reason)
    return tuple(dict.fromkeys(reasons))


def check(retries: int, delay: float, backoff: str) -> None:
    if not 0 <= retries <= MAX_RETRIES:
        raise InvalidInput(f"retries must be 0-{MAX_RETRIES}", field="retries")
    if not 0 <= delay <= MAX_DELAY:
        raise InvalidInput(f"retry delay must be 0-{MAX_DELAY:g} seconds", field="retry_delay")
    if backoff not in BACKOFFS:
        raise InvalidInput(f"backoff must be one of {', '.join(BACKOFFS)}", field="backoff")


def next_delay(retried: int, delay: float, backoff: str, rand: float | None = None) -> float:
    """Seconds before retry number ``retried + 1``, with ±20 % jitter (so a burst of
    failures does not retry in lockstep), at most a day."""
    base = delay * (2 ** min(retried, 30) if backoff == "exponential" else 1)
    jitter = 0.8 + 0.4 * (random.random() if rand is None else rand)  # jitter, not crypto
    return min(MAX_DELAY, base * jitter)
