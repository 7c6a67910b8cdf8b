"""Rate limits: parsing, wording, and admission against counted windows (pure)."""

from __future__ import annotations

import pytest

from taskyard.errors import InvalidInput
from taskyard.rates import (
    Rate,
    RateLimit,
    Window,
    parse_rate,
    parse_rate_limit,
    queue_key,
    task_key,
)
from taskyard.store.admit import Candidate, Usage


@pytest.mark.parametrize(("text", "rate", "shown"), [
    ("100/1m", Rate(100, 60.0), "100/1m"), ("5/30s", Rate(5, 30.0), "5/30s"),
    ("10/m", Rate(10, 60.0), "10/1m"), ("3/2.5", Rate(3, 2.5), "3/2.5s"),
    ("1000/1h", Rate(1000, 3600.0), "1000/1h"), ("2/90s", Rate(2, 90.0), "2/90s"),
    (" 7 / 1d ", Rate(7, 86400.0), "7/1d"),
])
def test_rates_parse_and_read_back(text: str, rate: Rate, shown: str) -> None:
    assert parse_rate(text) == rate
    assert rate.describe() == shown and parse_rate(shown) == rate


@pytest.mark.parametrize("text", ["0/1m", "5/0s", "5/", "/1m", "5", "-1/1m", "5/1x", "x/1m",
                                  "5/8d", "2000000/1s", "5/-1s", "5/nan"])
def test_bad_rates_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rate(text, "rate")
    assert caught.value.field == "rate"


def test_rate_limits_need_a_key_without_spaces() -> None:
    assert parse_rate_limit("api=10/1m") == RateLimit("api", Rate(10, 60.0))
    assert parse_rate_limit("api=10/1m").describe() == "api=10/1m"
    for bad in ("api", "=10/1m", "a b=1/1s", "api=0/1m", 5):
        with pytest.raises(InvalidInput):
            parse_rate_limit(bad)


def test_admission_counts_this_claims_starts() -> None:
    usage = Usage(None, {}, {})
    usage.add_window(Window(task_key("api"), Rate(3, 60.0), 1, None))
    found = [Candidate(i, "default", "default", None, "api", "3/60") for i in range(1, 5)]
    assert usage.admit(found, 10) == [1, 2]
    assert usage.full_rates() == ["api 3/60"]
    assert [w.key for w in usage.filled()] == [task_key("api")]


def test_a_queue_rate_fills_the_queue() -> None:
    usage = Usage(None, {}, {})
    usage.queue_rates["io"] = Rate(1, 10.0)
    usage.add_window(Window(queue_key("io"), Rate(1, 10.0), 0, None))
    found = [Candidate(1, "io", "default", None), Candidate(2, "io", "default", None),
             Candidate(3, "other", "default", None)]
    assert usage.admit(found, 10) == [1, 3]
    assert usage.full_queues() == ["io"]


def test_wake_at_is_the_first_full_window_to_free() -> None:
    usage = Usage(None, {}, {})
    usage.add_window(Window(task_key("a"), Rate(1, 10.0), 1, 105.0))
    usage.add_window(Window(task_key("b"), Rate(1, 10.0), 1, 103.0))
    usage.add_window(Window(task_key("c"), Rate(5, 10.0), 1, None))
    assert usage.wake_at() == 103.0
