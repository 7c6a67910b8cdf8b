from __future__ import annotations

import time
from datetime import datetime

import pytest

from taskyard.cli.render import clock, safe
from taskyard.cli.tables import CUT, FIXED, TIME, WRAP, Col, fit_widths


def _fits(widths: list[int], total: int) -> bool:
    return sum(widths) + 2 * (len(widths) - 1) <= total


def test_a_table_that_fits_keeps_its_natural_widths() -> None:
    assert fit_widths([Col("NAME", CUT), Col("STATE")], [10, 6], 80) == [10, 6]


def test_the_name_gives_way_before_any_heading_is_cut() -> None:
    heads = ("QUEUE", "STATE", "LIMIT", "SCHED", "QUEUED", "RUN", "PAUSED", "OK", "FAILED",
             "STOPPED")
    natural = [40, 6, 5, 5, 6, 3, 6, 4, 6, 7]
    widths = fit_widths([Col(heads[0], WRAP, floor=8), *(Col(h) for h in heads[1:])],
                        natural, 80)
    assert sum(widths) + 2 * (len(widths) - 1) == 80
    assert widths[1:] == natural[1:] and widths[0] == 14


def test_the_widest_gives_way_first_down_to_its_floor_then_times_then_headings() -> None:
    cols = [Col("ID"), Col("NAME", CUT, floor=8), Col("STATUS"), Col("COMMAND", CUT, floor=16),
            Col("STARTED", TIME)]
    natural = [3, 24, 19, 60, 23]  # the time has a date: 2026-12-03 14:46:42.058
    times = [3, 24, 19, 60, 12]
    # the command gives way alone, then with the name, level, down to their floors
    assert fit_widths(cols, natural, 100, times) == [3, 23, 19, 24, 23]
    assert fit_widths(cols, natural, 80, times) == [3, 11, 19, 16, 23]
    # past both floors the date goes above the time (never cut), and the room that
    # leaves goes back to the others
    assert fit_widths(cols, natural, 70, times) == [3, 12, 19, 16, 12]
    assert fit_widths(cols, natural, 66, times) == [3, 8, 19, 16, 12]
    # then the cut columns go down to their headings; fixed ones never narrow
    assert fit_widths(cols, natural, 60, times) == [3, 8, 19, 10, 12]
    assert fit_widths(cols, natural, 10, times) == [3, 4, 19, 7, 12]


def test_as_few_times_as_will_do_put_their_date_above_them() -> None:
    cols = [Col("ATTEMPT"), Col("PID"), Col("OUTCOME"), Col("STARTED", TIME),
            Col("FINISHED", TIME)]
    natural, times = [7, 7, 19, 23, 23], [7, 7, 19, 12, 12]
    assert fit_widths(cols, natural, 87, times) == natural
    assert fit_widths(cols, natural, 80, times) == [7, 7, 19, 12, 23]
    assert fit_widths(cols, natural, 70, times) == [7, 7, 19, 12, 12]


def test_cut_columns_go_down_to_their_headings_before_wrapping_ones() -> None:
    cols = [Col("NAME", WRAP, floor=16), Col("EXPR", WRAP, floor=30), Col("NEXT", TIME),
            Col("COMMAND", CUT, floor=12)]
    widths = fit_widths(cols, [40, 21, 9, 200], 60, [40, 21, 9, 200])
    assert _fits(widths, 60) and widths == [16, 21, 9, 8]


def test_every_kind_of_column_keeps_at_least_its_heading() -> None:
    cols = [Col("IDENT"), Col("LONGNAME", CUT, floor=10), Col("ERROR", WRAP, floor=12),
            Col("WHEN", TIME)]
    for total in (80, 40, 20, 5):
        widths = fit_widths(cols, [30, 50, 60, 23], total, [30, 50, 60, 12])
        assert all(w >= len(c.head) for w, c in zip(widths, cols, strict=True))
        assert widths[0] == 30  # FIXED
    assert fit_widths(cols, [30, 50, 60, 23], 5, [30, 50, 60, 12]) == [30, 8, 5, 12]
    assert {c.kind for c in cols} == {FIXED, CUT, WRAP, TIME}


def test_safe_escapes_every_control_character_so_rows_stay_whole() -> None:
    assert safe("a\nb\tc\rd\x1b[31me") == "a\\nb\\tc\\rd\\x1b[31me"
    assert safe("plain text, ünïcode") == "plain text, ünïcode"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_clock_prints_the_time_to_the_millisecond_and_the_date_only_when_not_today() -> None:
    now = _ts("2026-12-03T18:00:00+00:00")
    assert clock(_ts("2026-12-03T14:46:42.0582+00:00"), True, now=now) == "14:46:42.058"
    assert clock(_ts("2026-12-02T14:46:42.0582+00:00"), True, now=now) == (
        "2026-12-02 14:46:42.058")
    assert clock(_ts("2026-12-03T23:59:59.9999+00:00"), True, now=now) == "23:59:59.999"
    assert clock(_ts("2026-12-03T14:46:00+00:00"), True, minutes=True, now=now) == "14:46"
    assert clock(_ts("0099-01-01T00:00:00+00:00"), True, now=now) == "0099-01-01 00:00:00.000"
    assert clock(None) == ""


def test_clock_is_local_time_unless_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30, no DST
    time.tzset()
    try:
        ts = _ts("2026-12-03T14:46:42.058+00:00")
        now = _ts("2026-12-03T15:00:00+00:00")
        assert clock(ts, now=now) == "20:16:42.058"
        assert clock(ts, True, now=now) == "14:46:42.058"
        # 20:00 UTC is already tomorrow in Kolkata: the date is shown there, not in UTC
        late = _ts("2026-12-03T20:00:00+00:00")
        assert clock(late, now=now) == "2026-12-04 01:30:00.000"
        assert clock(late, True, now=now) == "20:00:00.000"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_an_outcome_reads_as_its_reason_and_only_a_telling_exit_code() -> None:
    from taskyard.cli.render import outcome
    from taskyard.lifecycle import Reason, Status
    from taskyard.model import TaskSpec
    from taskyard.store.memory import MemoryStore

    store = MemoryStore()
    task = store.submit(TaskSpec(argv=("true",)), by="test")
    reported = task._replace(status=Status.FAILED, reason=Reason.REPORTED, exit_code=0,
                             error="disk full")
    assert outcome(reported) == "failed (reported)"  # its exit 0 says nothing more
    exited = task._replace(status=Status.FAILED, reason=Reason.EXIT, exit_code=3)
    assert outcome(exited) == "failed (exit 3)"
    store.close()
