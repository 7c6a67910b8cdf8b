from __future__ import annotations

from taskyard.cli.render import fit_widths, safe


def test_a_table_that_fits_keeps_its_natural_widths() -> None:
    assert fit_widths(("NAME", "STATE"), [10, 6], (), 80) == [10, 6]


def test_the_name_gives_way_before_any_heading_is_cut() -> None:
    heads = ("QUEUE", "STATE", "LIMIT", "SCHED", "QUEUED", "RUN", "PAUSED", "OK", "FAILED",
             "STOPPED")
    natural = [40, 6, 5, 5, 6, 3, 6, 4, 6, 7]
    widths = fit_widths(heads, natural, (), 80)
    assert sum(widths) + 2 * (len(widths) - 1) == 80
    assert widths[1:] == natural[1:] and widths[0] == 14


def test_a_wrapping_column_gives_way_first_then_the_name_then_the_widest() -> None:
    heads = ("NAME", "EXPR", "NEXT", "COMMAND")
    assert fit_widths(heads, [30, 11, 20, 50], {"COMMAND"}, 60) == [11, 11, 20, 12]
    assert fit_widths(heads, [30, 11, 20, 50], {"COMMAND"}, 50) == [8, 11, 13, 12]
    for total in (40, 30):
        widths = fit_widths(heads, [30, 11, 20, 50], {"COMMAND"}, total)
        assert sum(widths) + 6 == total
        assert all(w >= len(h) for w, h in zip(widths, heads, strict=True))
    # Past every floor the table is wider than asked, but no heading is cut.
    assert fit_widths(heads, [30, 11, 20, 50], {"COMMAND"}, 20) == [4, 4, 4, 7]


def test_safe_escapes_every_control_character_so_rows_stay_whole() -> None:
    assert safe("a\nb\tc\rd\x1b[31me") == "a\\nb\\tc\\rd\\x1b[31me"
    assert safe("plain text, ünïcode") == "plain text, ünïcode"
