"""The plain table renderer of the CLI (cli/grid.py): cells cut with … or folded, wide
characters counted as two cells, styles only on a terminal."""

from __future__ import annotations

import pytest

from taskyard.cli import grid
from taskyard.cli.grid import Column, Styled, cell_len, cut, fold, lines


def test_cells_count_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    assert cell_len("abc") == 3
    assert cell_len("日本") == 4
    assert cell_len("e\u0301") == 1


def test_a_cut_cell_ends_with_an_ellipsis_within_its_width() -> None:
    assert cut("python -m jobs.run", 8) == "python …"
    assert cut("short", 8) == "short"
    assert cut("日本語テキスト", 5) == "日本…"
    assert cell_len(cut("日本語テキスト", 5)) <= 5


def test_a_folded_cell_breaks_between_words_and_inside_a_word_too_long() -> None:
    assert fold("server:abc on host x", 10) == ["server:abc", "on host x"]
    assert fold("bench-fill", 5) == ["bench", "-fill"]
    assert all(cell_len(line) <= 7 for line in fold("a " + "x" * 30 + " b", 7))
    assert "".join(fold("x" * 30, 7)) == "x" * 30
    assert fold("ab", 0) == ["a", "b"]  # never narrower than one cell


def test_rows_are_padded_and_a_row_is_as_high_as_its_tallest_cell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid, "colour", lambda: False)
    out = lines([Column(2, False, right=True), Column(5, True)],
                [["1", "one two three"]], head=["ID", "WHAT"], title="things")
    assert out == ["things   ", "ID  WHAT ", " 1  one  ", "    two  ", "    three"]


def test_styles_are_written_only_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    cols = [Column(9, False)]
    monkeypatch.setattr(grid, "colour", lambda: False)
    assert lines(cols, [[Styled("failed", "red")]]) == ["failed   "]
    monkeypatch.setattr(grid, "colour", lambda: True)
    assert lines(cols, [[Styled("failed", "red")]]) == ["\x1b[31mfailed\x1b[0m   "]


def test_colour_follows_no_color_and_force_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert grid.colour() is False
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert grid.colour() is True


def test_the_width_is_columns_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "123")
    assert grid.width() == 123
