"""The arithmetic of ``taskyard stats``, on rows made by hand: windows, percentiles,
minutes, resumes, retried failures, memory, and the CLI's bars and sizes."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from taskyard import stats
from taskyard.cli.stats import kib, spark
from taskyard.errors import InvalidInput
from taskyard.store.stats import StatsRows


@pytest.mark.parametrize(("given", "seconds"), [
    ("30s", 30), ("10m", 600), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), (90, 90),
    (2.5, 2.5), (timedelta(minutes=5), 300), ("100d", 8_640_000),
])
def test_windows(given: str | float | timedelta, seconds: float) -> None:
    assert stats.window_of(given) == seconds


@pytest.mark.parametrize("given", ["0s", "0.5s", "101d", "", "1y", "abc", "-1h", 0, -5,
                                   math.nan, math.inf, True, None, [1]])
def test_bad_windows_name_the_field(given: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        stats.window_of(given)  # type: ignore[arg-type]
    assert caught.value.field == "since"


def test_percentiles_are_nearest_rank() -> None:
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([7.0], 0.95) == 7.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert (stats.percentile(values, 0.5), stats.percentile(values, 0.95)) == (50.0, 95.0)
    assert stats.timing([3.0, 1.0, 2.0]) == stats.Timing(3, 2.0, 3.0, 3.0)


def test_a_window_by_hand() -> None:
    since, until = 1000.0, 1150.0  # two and a half minutes: three minutes, the last short
    rows = StatsRows(
        counts=[("t1", "q1", "running", 1), ("t1", "q1", "failed", 2), ("t2", "q2", "queued", 4)],
        submitted=[(1000.0, "q1", "t1"), (1059.9, "q1", "t1"), (1060.0, "q2", "t2")],
        events=[
            (1001.0, "q1", "t1", "queued", "running", None, 1.0),  # a claim after 1 s
            (1010.0, "q1", "t1", "running", "paused", None, None),  # not in the index: ignored
            (1020.0, "q1", "t1", "paused", "running", None, None),  # a resume: no start
            (1070.0, "q1", "t1", "running", "failed", "exit", 69.0),  # retried: still a failure
            (1071.0, "q1", "t1", "queued", "running", None, 3.0),
            (1149.0, "q1", "t1", "running", "failed", "timeout", 78.0),
            (1100.0, "q2", "t2", "scheduled", "failed", "dependency", None),  # never ran
            (1120.0, "q2", "t2", "queued", "stopped", "killed", None),  # cancelled
        ],
        running=[(5, "q1", "t1", 2048, 1149.0, "command"), (6, "q1", "t1", None, None, "command")])
    got = stats.summarize(rows, since, until)
    assert got.per_minute == {"submitted": [2, 1, 0], "started": [1, 1, 0],
                              "finished": [0, 2, 2]}
    t = got.total
    assert (t.submitted, t.started) == (3, 2)
    assert t.finished == {"succeeded": 0, "failed": 3, "stopped": 1}
    assert t.failures == {"dependency": 1, "exit": 1, "timeout": 1}
    assert t.wait == stats.Timing(2, 1.0, 3.0, 3.0)
    assert t.run == stats.Timing(2, 69.0, 78.0, 78.0)
    assert t.memory == stats.Memory(2, 1, 2048, 2048, 5)
    assert t.tasks["failed"] == 2 and t.tasks["queued"] == 4 and t.tasks["succeeded"] == 0
    assert set(got.queues) == {"q1", "q2"} and set(got.tenants) == {"t1", "t2"}
    assert got.queues["q2"].failures == {"dependency": 1}
    assert got.queues["q2"].memory == stats.Memory(0, 0, 0, None, None)
    data = got.to_json()
    assert data["finished"] == 4 and data["wait"] == {"count": 2, "p50": 1.0, "p95": 3.0,
                                                      "max": 3.0}
    assert data["running"][0] == {"id": 5, "queue": "q1", "tenant": "t1", "rss_kib": 2048,
                                  "sampled_at": "1970-01-01T00:19:09Z", "kind": "command"}


def test_bars_and_sizes() -> None:
    assert spark([0, 0]) == "(none)"
    assert spark([0, 4, 8]) == " ▄█"
    assert spark([1] * 120, width=60) == "█" * 60 + "  (2 min a bar)"
    assert (kib(512), kib(1536), kib(3 * 1024 * 1024)) == ("512 KiB", "1.5 MiB", "3.0 GiB")
