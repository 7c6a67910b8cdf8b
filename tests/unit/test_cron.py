"""taskyard.cron: validation, fire times across DST, due() and its catch-up policies.

Everything runs on a fake clock: ``due()`` is polled as a scheduler would poll it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from taskyard import cron
from taskyard.cron import CatchUp, check_expr, check_zone, due, fires_between, next_fire
from taskyard.errors import InvalidInput

NY = "America/New_York"
BERLIN = "Europe/Berlin"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, *,
       fold: int = 0) -> float:
    """Epoch seconds of a local wall time (``fold=1``: the second pass of a repeated hour)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(tz), fold=fold).timestamp()


def midnight(tz: str, day: tuple[int, int, int], plus_days: int = 0) -> float:
    """Epoch seconds of local midnight starting ``day`` (shifted by ``plus_days``)."""
    when = date(*day) + timedelta(days=plus_days)
    return at(tz, when.year, when.month, when.day)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    return at("UTC", y, mo, d, h, mi, s)


def local(tz: str, ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%m-%d %H:%M %Z")


def poll(
    expr: str,
    tz: str,
    start: float,
    end: float,
    step: float,
    *,
    catch_up: CatchUp = CatchUp.ONE,
    max_lag: float | None = None,
) -> list[float]:
    """Poll due() every ``step`` seconds from ``start`` (the schedule's creation) to ``end``."""
    clock = FakeClock(start)
    last = start
    fired: list[float] = []
    while clock.now < end:
        clock.advance(step)
        ticks, new_last = due(expr, tz, last=last, now=clock.now, catch_up=catch_up,
                              max_lag=max_lag)
        assert last <= new_last <= clock.now
        assert all(last < t <= clock.now for t in ticks)
        fired += ticks
        last = new_last
    assert fired == sorted(set(fired))
    return fired


# --- DST ---------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "tz", "day", "expected"), [
    # Spring forward: 02:30 does not exist; the job fires once, at 03:00 right after the gap.
    ("30 2 * * *", NY, (2026, 3, 8),
     ["03-07 02:30 EST", "03-08 03:00 EDT", "03-09 02:30 EDT"]),
    ("30 2 * * *", BERLIN, (2026, 3, 29),
     ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"]),
    # Fall back: the wall time occurs twice; the job fires once, at the first (summer) one.
    ("30 1 * * *", NY, (2026, 11, 1),
     ["10-31 01:30 EDT", "11-01 01:30 EDT", "11-02 01:30 EST"]),
    ("30 2 * * *", BERLIN, (2026, 10, 25),
     ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]),
    # Several ticks in the gap, or one moved onto another, fire once.
    ("0,30 2 * * *", NY, (2026, 3, 8),
     ["03-07 02:00 EST", "03-07 02:30 EST", "03-08 03:00 EDT", "03-09 02:00 EDT",
      "03-09 02:30 EDT"]),
    ("0 1-3 * * *", BERLIN, (2026, 3, 29),
     ["03-28 01:00 CET", "03-28 02:00 CET", "03-28 03:00 CET", "03-29 01:00 CET",
      "03-29 03:00 CEST", "03-30 01:00 CEST", "03-30 02:00 CEST", "03-30 03:00 CEST"]),
    # A range of fixed hours across the repeated hour: each wall time once.
    ("30 1-3 * * *", NY, (2026, 11, 1),
     ["10-31 01:30 EDT", "10-31 02:30 EDT", "10-31 03:30 EDT", "11-01 01:30 EDT",
      "11-01 02:30 EST", "11-01 03:30 EST", "11-02 01:30 EST", "11-02 02:30 EST",
      "11-02 03:30 EST"]),
])
def test_fixed_time_jobs_fire_once_across_dst(
        expr: str, tz: str, day: tuple[int, int, int], expected: list[str]) -> None:
    start, end = midnight(tz, day, -1), midnight(tz, day, 2)
    fired = poll(expr, tz, start, end, 60)
    assert [local(tz, t) for t in fired] == expected
    assert fired == fires_between(expr, tz, start, end)


@pytest.mark.parametrize(("tz", "day", "count", "hour", "at_that_hour"), [
    # No 02:00 on the spring-forward day; 01:00 (New York), 02:00 (Berlin) twice in the fall.
    (NY, (2026, 3, 8), 23, "02:00", []),
    (NY, (2026, 11, 1), 25, "01:00", ["11-01 01:00 EDT", "11-01 01:00 EST"]),
    (BERLIN, (2026, 3, 29), 23, "02:00", []),
    (BERLIN, (2026, 10, 25), 25, "02:00", ["10-25 02:00 CEST", "10-25 02:00 CET"]),
])
@pytest.mark.parametrize("expr", ["0 * * * *", "@hourly"])
def test_hourly_fires_at_each_real_hour(expr: str, tz: str, day: tuple[int, int, int],
                                        count: int, hour: str, at_that_hour: list[str]) -> None:
    start, end = midnight(tz, day), midnight(tz, day, 1)
    fired = poll(expr, tz, start - 1, end - 1, 60)  # ticks in [00:00, 24:00)
    assert len(fired) == count
    assert all(b - a == 3600 for a, b in zip(fired, fired[1:], strict=False))
    assert [n for n in map(partial(local, tz), fired) if n[6:11] == hour] == at_that_hour


def test_every_15_minutes_through_the_repeated_hour_and_the_gap() -> None:
    fired = poll("*/15 * * * *", NY, at(NY, 2026, 11, 1, 0, 59), at(NY, 2026, 11, 1, 2, 0), 60)
    assert [local(NY, t) for t in fired] == [
        "11-01 01:00 EDT", "11-01 01:15 EDT", "11-01 01:30 EDT", "11-01 01:45 EDT",
        "11-01 01:00 EST", "11-01 01:15 EST", "11-01 01:30 EST", "11-01 01:45 EST",
        "11-01 02:00 EST"]
    assert all(b - a == 900 for a, b in zip(fired, fired[1:], strict=False))
    fired = poll("*/15 * * * *", BERLIN, at(BERLIN, 2026, 3, 29, 1, 30),
                 at(BERLIN, 2026, 3, 29, 3, 30), 60)
    assert [local(BERLIN, t) for t in fired] == [
        "03-29 01:45 CET", "03-29 03:00 CEST", "03-29 03:15 CEST", "03-29 03:30 CEST"]
    # A wildcard-minute job in the missing hour does not fire that day.
    day = fires_between("*/15 2 * * *", NY, at(NY, 2026, 3, 8), at(NY, 2026, 3, 9))
    assert day == []


def test_fixed_time_job_made_during_the_second_pass_of_the_repeated_hour() -> None:
    # cronsim alone answers 01:30 EDT here, half an hour *before* the start.
    made = at(NY, 2026, 11, 1, 1, 10, fold=1)
    assert local(NY, made) == "11-01 01:10 EST"
    assert local(NY, next_fire("30 1 * * *", NY, made)) == "11-02 01:30 EST"
    assert local(NY, next_fire("30 1 * * *", NY, made - 3600)) == "11-01 01:30 EDT"
    assert poll("30 1 * * *", NY, made, at(NY, 2026, 11, 2, 12), 60) == [at(NY, 2026, 11, 2, 1, 30)]


def test_utc_and_plain_next_fire() -> None:
    t = utc(2026, 5, 4, 10, 7, 30) + 0.25
    assert next_fire("*/5 * * * *", "UTC", t) == utc(2026, 5, 4, 10, 10)
    assert next_fire("*/5 * * * *", "UTC", utc(2026, 5, 4, 10, 10)) == utc(2026, 5, 4, 10, 15)
    assert next_fire("*/5 * * * *", "UTC", utc(2026, 5, 4, 10, 10) - 0.000001) == utc(
        2026, 5, 4, 10, 10)
    assert next_fire("0 9 * * 1-5", BERLIN, utc(2026, 5, 8, 12)) == at(BERLIN, 2026, 5, 11, 9)
    assert next_fire("@yearly", "UTC", utc(2026, 5, 4)) == utc(2027, 1, 1)


# --- exactly once, catch-up ----------------------------------------------------

def _every_5_minutes(start: float, end: float) -> list[float]:
    return [float(t) for t in range(int(start) + 1, int(end) + 1) if t % 300 == 0]


def test_polling_every_second_for_a_day_fires_each_tick_exactly_once() -> None:
    # The fall-back day in New York: 25 hours, every 5 real minutes (both passes of 01:xx).
    start, end = midnight(NY, (2026, 11, 1)), midnight(NY, (2026, 11, 1), 1)
    fired = poll("*/5 * * * *", NY, start, end, 1)
    assert fired == _every_5_minutes(start, end)
    assert len(fired) == 25 * 12


@pytest.mark.parametrize("catch_up", [CatchUp.NONE, CatchUp.ALL])
@pytest.mark.parametrize("max_lag", [None, 30.0])
def test_polling_every_second_fires_each_tick_exactly_once_whatever_the_policy(
        catch_up: CatchUp, max_lag: float | None) -> None:
    start, end = at(NY, 2026, 11, 1, 0, 30), at(NY, 2026, 11, 1, 2, 30)  # 3 real hours
    fired = poll("*/5 * * * *", NY, start, end, 1, catch_up=catch_up, max_lag=max_lag)
    assert fired == _every_5_minutes(start, end)
    assert len(fired) == 36


BACK = utc(2026, 6, 1, 12, 3, 30)  # the first poll after the outage
EVERY_10 = "*/10 * * * *"


def _after_outage(catch_up: CatchUp, max_lag: float | None) -> tuple[list[float], float]:
    clock = FakeClock(utc(2026, 6, 1, 8, 59))
    last = clock.now
    clock.advance(90)  # the last poll before the outage, 30 s after the 09:00 tick
    fired, last = due(EVERY_10, "UTC", last=last, now=clock.now, catch_up=catch_up,
                      max_lag=max_lag)
    assert (fired, last) == ([utc(2026, 6, 1, 9)], utc(2026, 6, 1, 9))
    clock.advance(3 * 3600 + 180)  # down for over 3 hours
    assert clock.now == BACK
    return due(EVERY_10, "UTC", last=last, now=clock.now, catch_up=catch_up, max_lag=max_lag)


@pytest.mark.parametrize("max_lag", [None, 3600.0, 30.0])
def test_catch_up_none_fires_nothing_old(max_lag: float | None) -> None:
    ticks, last = _after_outage(CatchUp.NONE, max_lag)
    assert ticks == []
    assert last == utc(2026, 6, 1, 12)  # the missed ticks are accounted for
    # ... and polling resumes normally.
    assert due(EVERY_10, "UTC", last=last, now=utc(2026, 6, 1, 12, 10, 5),
               catch_up=CatchUp.NONE, max_lag=max_lag) == ([utc(2026, 6, 1, 12, 10)],
                                                            utc(2026, 6, 1, 12, 10))


def test_catch_up_one_fires_the_latest_within_max_lag() -> None:
    latest = utc(2026, 6, 1, 12)
    assert _after_outage(CatchUp.ONE, None) == ([latest], latest)
    assert _after_outage(CatchUp.ONE, 3600) == ([latest], latest)
    assert _after_outage(CatchUp.ONE, 210) == ([latest], latest)  # lag exactly max_lag
    assert _after_outage(CatchUp.ONE, 209) == ([], latest)
    assert _after_outage(CatchUp.ONE, 60) == ([], latest)


def test_catch_up_all_fires_every_missed_tick_within_max_lag() -> None:
    latest = utc(2026, 6, 1, 12)
    every = [utc(2026, 6, 1, 9, 10) + 600 * i for i in range(18)]
    assert every[-1] == latest
    assert _after_outage(CatchUp.ALL, None) == (every, latest)
    assert _after_outage(CatchUp.ALL, 3600) == ([t for t in every if BACK - t <= 3600], latest)
    assert _after_outage(CatchUp.ALL, 3600)[0][0] == utc(2026, 6, 1, 11, 10)
    assert _after_outage(CatchUp.ALL, 60) == ([], latest)


def test_catch_up_all_is_capped_at_the_most_recent() -> None:
    now = utc(2026, 6, 3, 0, 0, 10)
    ticks, last = due("* * * * *", "UTC", last=utc(2026, 6, 1), now=now, catch_up=CatchUp.ALL,
                      max_lag=None)
    assert len(ticks) == cron.MAX_CATCH_UP
    assert ticks[-1] == last == utc(2026, 6, 3)
    assert ticks[0] == utc(2026, 6, 3) - 60 * (cron.MAX_CATCH_UP - 1)


def test_due_edges() -> None:
    t = utc(2026, 6, 1, 12)
    # Nothing passed yet, or the clock went back: nothing fires, last stays.
    assert due(EVERY_10, "UTC", last=t, now=t + 599, catch_up=CatchUp.ALL, max_lag=None) == ([], t)
    assert due(EVERY_10, "UTC", last=t, now=t - 3600, catch_up=CatchUp.ONE, max_lag=None) == (
        [], t)
    # A tick exactly at now fires; the policy may be given as its string value.
    assert due(EVERY_10, "UTC", last=t, now=t + 600, catch_up="none",  # type: ignore[arg-type]
               max_lag=None) == ([t + 600], t + 600)
    with pytest.raises(ValueError, match="max_lag"):
        due(EVERY_10, "UTC", last=t, now=t, catch_up=CatchUp.ONE, max_lag=-1)
    with pytest.raises(ValueError, match="limit"):
        fires_between(EVERY_10, "UTC", t, t + 3600, -1)
    assert fires_between(EVERY_10, "UTC", t, t + 3600, 0) == []


def test_fires_between_returns_the_last_ones_over_a_long_range() -> None:
    start, end = utc(2020, 1, 1), utc(2026, 1, 1)
    ticks = fires_between("* * * * *", "UTC", start, end, 5)
    assert ticks == [end - 240, end - 180, end - 120, end - 60, end]
    yearly = fires_between("@yearly", BERLIN, start, end)
    assert [local(BERLIN, t) for t in yearly] == ["01-01 00:00 CET"] * 6
    assert len(fires_between("*/5 * * * *", NY, start, start + 86400 * 7)) == 1000


# --- validation ---------------------------------------------------------------

@pytest.mark.parametrize(("expr", "match"), [
    ("61 * * * *", "minute field '61'"),
    ("* 24 * * *", "hour field"),
    ("* * *", "3 fields"),
    ("0 0 * * * *", "seconds"),
    ("*/0 * * * *", "minute"),
    ("5-1 * * * *", "minute field '5-1'"),
    ("٣ * * * *", "ASCII"),
    ("* " * 3000, "too long"),
    ("", "empty"),
    ("   ", "empty"),
    ("@reboot", "@reboot is not supported"),
    ("@fortnightly", "unknown cron alias"),
    ("0 0 31 2 *", "never fires"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 4,6,9,11 *", "never fires"),
    ("* * */20 * 1L", "never fires"),
    ("0 0 15W * *", "day-of-month"),
    ("0 0 * * ?", "day-of-week"),
    ("0 0 * FOO *", "month"),
    ("0 0 32 2 *", "day-of-month field '32'"),
])
def test_bad_expressions(expr: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        check_expr(expr)
    assert info.value.field == "expr"
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInput):
        next_fire(expr, "UTC", 0)


@pytest.mark.parametrize(("expr", "normal"), [
    ("@hourly", "@hourly"),
    ("@daily", "@daily"),
    (" @Daily ", "@daily"),
    ("@midnight", "@midnight"),
    ("@annually", "@annually"),
    ("0 9 * * 1-5", "0 9 * * 1-5"),
    ("  0\t9  * *   mon-fri ", "0 9 * * mon-fri"),
    ("0 0 L * *", "0 0 L * *"),
    ("0 0 LW * *", "0 0 LW * *"),
    ("0 0 * * 5L", "0 0 * * 5L"),
    ("0 0 * * MON#1", "0 0 * * MON#1"),
    ("0 0 * 2 MON#5", "0 0 * 2 MON#5"),  # 29 February on a Monday: rare, but it fires
    ("0 0 29 2 *", "0 0 29 2 *"),
    ("0 0 1 2 MON", "0 0 1 2 MON"),  # either day field matches: 1 February and its Mondays
    ("10-50/20 */6 1,15 JAN-jun 0,7", "10-50/20 */6 1,15 JAN-jun 0,7"),
])
def test_good_expressions(expr: str, normal: str) -> None:
    assert check_expr(expr) == normal
    assert next_fire(expr, "UTC", utc(2026, 1, 1)) > utc(2026, 1, 1)


@pytest.mark.parametrize("tz", [
    "Mars/Olympus", "../etc/passwd", "", "/etc/passwd", "America", "localtime", "zone.tab",
    "Europe/Berlin ", "x" * 65, "Europe//Berlin", "UTC\0"])
def test_bad_zones(tz: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_zone(tz)
    assert info.value.field == "tz"
    with pytest.raises(InvalidInput):
        next_fire("* * * * *", tz, 0)


@pytest.mark.parametrize("tz", ["UTC", NY, BERLIN, "Etc/GMT+5", "America/Argentina/Buenos_Aires"])
def test_good_zones(tz: str) -> None:
    assert check_zone(tz) == tz


# --- properties ---------------------------------------------------------------

def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.integers(1, high - low + 1).map(lambda step: f"*/{step}"),
        st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}"),
        st.lists(value, min_size=1, max_size=3, unique=True).map(lambda v: ",".join(map(str, v))),
    )


EXPRESSIONS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12),
                        _field(0, 6)).map(" ".join)
ZONES = st.sampled_from(["UTC", NY, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata"])
INSTANTS = st.floats(min_value=utc(2020, 1, 1), max_value=utc(2035, 1, 1))


def _valid(expr: str) -> bool:
    try:
        check_expr(expr)
    except InvalidInput:
        return False
    return True


@settings(max_examples=50, deadline=None)
@given(EXPRESSIONS, ZONES, INSTANTS)
def test_next_fire_is_the_first_tick_after(expr: str, tz: str, after: float) -> None:
    assume(_valid(expr))
    first = next_fire(expr, tz, after)
    assert first > after
    assert first == int(first)
    assert next_fire(expr, tz, first - 1) == first
    assert fires_between(expr, tz, after, first) == [first]
    second = next_fire(expr, tz, first)
    assert second > first
    assert fires_between(expr, tz, after, second, 10) == [first, second]


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("0123456789*/,-LW#? @MONJANSUNreboty\t٣"), max_size=24))
def test_check_expr_accepts_or_raises_invalid_input(expr: str) -> None:
    try:
        normal = check_expr(expr)
    except InvalidInput as exc:
        assert exc.field == "expr"
    else:
        assert check_expr(normal) == normal
        next_fire(normal, "UTC", utc(2026, 1, 1))
