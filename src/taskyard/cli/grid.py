"""Lines of a borderless table whose column widths are decided (``tables.py`` fits them):
each cell is cut with … or folded over the next lines, as its column says, and padded;
2 spaces between columns. Styles (a status's colour, bold headings) are ANSI codes,
written only to a terminal that takes them.

What rich's ``Table(box=None, pad_edge=False)`` printed, without importing rich
(~25 ms of a CLI run) or its renderer (~40 ms for 50 rows): ``ls`` and ``show`` are
read commands that should take well under 100 ms in all.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import NamedTuple

#: ANSI codes of the styles the tables use
_SGR = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33",
        "magenta": "35", "cyan": "36"}
_WORD = re.compile(r"\s*\S+\s*")


class Styled(NamedTuple):
    """A cell's text with a style (a name of :data:`_SGR`, or "")."""

    text: str
    style: str = ""


Cell = str | Styled


def colour() -> bool:
    """Whether stdout takes ANSI styles: a terminal (not ``TERM=dumb``), unless
    ``NO_COLOR`` is set; ``FORCE_COLOR`` forces them (as rich decides)."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def width() -> int:
    """The width to fit: ``$COLUMNS``, else the terminal's (of stdin, stdout or stderr,
    whichever is one), else 80."""
    found = None
    for fd in (0, 1, 2):
        try:
            found = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            continue
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        found = int(columns)
    return found or 80


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide characters take 2, combining
    marks none."""
    if text.isascii():
        return len(text)
    return sum(_char_len(ch) for ch in text)


def _char_len(ch: str) -> int:
    import unicodedata

    if ch.isascii():
        return 1
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _chop(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` cells (a wide character stays whole)."""
    if text.isascii():
        return [text[i:i + size] for i in range(0, len(text), size)] or [""]
    pieces, part, used = [], "", 0
    for ch in text:
        n = _char_len(ch)
        if used + n > size and part:
            pieces.append(part)
            part, used = "", 0
        part += ch
        used += n
    return [*pieces, part]


def cut(text: str, size: int) -> str:
    """``text`` within ``size`` cells: ending with … when it did not fit."""
    if cell_len(text) <= size:
        return text
    return _chop(text, max(0, size - 1))[0] + "…" if size > 0 else ""


def fold(text: str, size: int) -> list[str]:
    """``text`` over lines of at most ``size`` cells: broken between words, a word
    longer than a line broken inside it."""
    size = max(1, size)
    if cell_len(text) <= size:
        return [text]
    lines: list[str] = []
    line, used = "", 0
    for match in _WORD.finditer(text):
        word = match.group()
        length = cell_len(word.rstrip())
        if used + length <= size:
            line, used = line + word, used + cell_len(word)
            continue
        if line:
            lines.append(line)
            line, used = "", 0
        if length > size:
            pieces = _chop(word, size)
            lines += pieces[:-1]
            line, used = pieces[-1], cell_len(pieces[-1])
        else:
            line, used = word, cell_len(word)
    lines.append(line)
    return [x if cell_len(x) <= size else _chop(x, size)[0] for x in lines]


def _pad(text: str, size: int, right: bool, painted: str | None = None) -> str:
    """``text`` (as ``painted``, if given) padded to ``size`` cells."""
    room = " " * max(0, size - cell_len(text))
    shown = text if painted is None else painted
    return room + shown if right else shown + room


def _paint(text: str, style: str, on: bool) -> str:
    codes = ";".join(_SGR[s] for s in style.split() if s in _SGR)
    return f"\x1b[{codes}m{text}\x1b[0m" if on and codes and text else text


class Column(NamedTuple):
    size: int
    wraps: bool  #: folded over lines (else cut with …)
    right: bool = False
    style: str = ""  #: every cell's style (``show``'s field names are bold)


def lines(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
          head: Sequence[str] | None = None, title: str | None = None) -> list[str]:
    """The table's lines: the title, the heading (bold), then each row."""
    on = colour()
    total = sum(c.size for c in columns) + 2 * (len(columns) - 1)
    shown = None if title is None else cut(title, total)
    out = [] if shown is None else [_pad(shown, total, False, _paint(shown, "italic", on))]
    if head is not None:
        out += _row(columns, [Styled(h, "bold") for h in head], on)
    for row in rows:
        out += _row(columns, row, on)
    return out


def _row(columns: Sequence[Column], row: Sequence[Cell], on: bool) -> list[str]:
    cells: list[list[str]] = []
    for col, cell in zip(columns, row, strict=True):
        text, style = (cell, "") if isinstance(cell, str) else cell
        parts = fold(text, col.size) if col.wraps else [cut(text, col.size)]
        paint = f"{col.style} {style}".strip()
        cells.append([_pad(p, col.size, col.right, _paint(p, paint, on)) for p in parts])
    height = max((len(c) for c in cells), default=1)
    return ["  ".join(c[i] if i < len(c) else " " * col.size
                      for c, col in zip(cells, columns, strict=True))
            for i in range(height)]


def write(text_lines: Sequence[str]) -> None:
    if text_lines:
        sys.stdout.write("\n".join(text_lines) + "\n")
