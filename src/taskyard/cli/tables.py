"""Borderless tables that fit the terminal without cutting what must stay whole.

Each column says how it may give way when the table is too wide: ``FIXED`` never
(ids, statuses, counts), ``TIME`` only by putting its date above its time (never
cut), ``CUT`` by ending with … (descriptions: task names, commands, progress; ``show``
and ``--json`` have them whole), ``WRAP`` by going on over the next lines (names
that are typed to address a queue, tenant or schedule; hosts; errors). See
:func:`fit_widths` for the order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from . import grid
from .grid import Cell, Styled

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CUT", "FIXED", "TIME", "WRAP", "Col", "Styled", "console", "fields",
           "fit_widths", "table"]

FIXED, TIME, CUT, WRAP = "fixed", "time", "cut", "wrap"
_DATE = re.compile(r"\d{4}-\d\d-\d\d ")


class Col(NamedTuple):
    head: str
    kind: str = FIXED
    right: bool = False  #: right-aligned (numbers)
    #: CUT and WRAP: the narrowest it gets before times give way (never below the heading)
    floor: int = 0
    cap: int | None = None  #: CUT: the widest it gets, even with room to spare


def console() -> Console:
    """A rich console (``server status``'s text, ``function`` progress bars). On a closed pipe (``| head``) rich would exit 1;
    this one raises BrokenPipeError, which main() ends quietly with 0, as for any
    other command."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(highlight=False)


_width = grid.cell_len


def _time_floor(cell: str) -> int:
    """A time cell wraps only between its date and its time: the wider of the two."""
    if _DATE.match(cell):
        return max(10, _width(cell[11:]))
    return _width(cell)


def fit_widths(cols: Sequence[Col], natural: Sequence[int], total: int,
               time_floors: Sequence[int] | None = None) -> list[int]:
    """Column widths that fit ``total`` characters (2 between columns). The columns
    give way in this order: ``WRAP`` and ``CUT`` columns down to their floors (the
    widest first), then ``TIME`` columns, the widest first and as few as will do, each
    down to its time (the date goes above it; any wider would wrap the same), and the
    others take back the room that leaves; then ``CUT`` columns down to their headings,
    then ``WRAP`` ones. ``FIXED`` columns never narrow: past all that, the table is
    wider than ``total``."""
    heads = [_width(c.head) for c in cols]
    times = list(time_floors) if time_floors is not None else list(natural)
    floors = [max(h, c.floor) for h, c in zip(heads, cols, strict=True)]
    flexible = [i for i, c in enumerate(cols) if c.kind in (WRAP, CUT)]
    widths = list(natural)
    excess = _level(widths, flexible, floors, _excess(widths, total))
    if excess > 0:
        timed = sorted((i for i, c in enumerate(cols) if c.kind == TIME), key=lambda i: -widths[i])
        for i in timed:
            if excess <= 0:
                break
            floor = max(heads[i], times[i])
            excess -= widths[i] - floor
            widths[i] = floor
        if excess < 0:
            for i in flexible:
                widths[i] = natural[i]
            excess = _level(widths, flexible, floors, _excess(widths, total))
    for kind in (CUT, WRAP):
        excess = _level(widths, [i for i, c in enumerate(cols) if c.kind == kind], heads, excess)
    return widths


def _excess(widths: Sequence[int], total: int) -> int:
    return sum(widths) + 2 * (len(widths) - 1) - total


def _level(widths: list[int], which: Sequence[int], floors: Sequence[int], excess: int) -> int:
    """Narrow the widest of the columns ``which`` (never below their floors) until
    ``excess`` is taken; returns what is left of it."""
    while excess > 0:
        above = [i for i in which if widths[i] > floors[i]]
        if not above:
            break
        top = max(widths[i] for i in above)
        tops = [i for i in above if widths[i] == top]
        lower = max([widths[i] for i in above if widths[i] < top]
                    + [max(floors[i] for i in tops)])
        step = min(top - lower, -(-excess // len(tops)))
        for i in tops:
            cut = min(step, excess, widths[i] - floors[i])
            widths[i] -= cut
            excess -= cut
    return excess


def table(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], *,
          title: str | None = None) -> None:
    """Print a borderless table fitted to the terminal's width (see :func:`fit_widths`).
    Cells are printed as given (pass text through ``render.safe``); a ``Styled`` one
    keeps its style on a terminal."""
    plain = [[c if isinstance(c, str) else c.text for c in row] for row in rows]
    natural, time_floors = [], []
    for i, col in enumerate(cols):
        cells = [row[i] for row in plain]
        width = max([_width(col.head)] + [_width(c) for c in cells])
        if col.cap is not None:
            width = min(width, max(col.cap, _width(col.head)))
        natural.append(width)
        time_floors.append(max([0] + [_time_floor(c) for c in cells]))
    # Wider than the terminal only when even FIXED columns do not fit: printed whole (the
    # terminal wraps the lines) rather than cut ids and statuses.
    widths = fit_widths(cols, natural, grid.width(), time_floors)
    columns = [grid.Column(w, c.kind in (TIME, WRAP), c.right)
               for c, w in zip(cols, widths, strict=True)]
    grid.write(grid.lines(columns, rows, head=[c.head for c in cols], title=title))


def fields(rows: Sequence[tuple[str, str]], *, key_style: str = "bold",
           key_right: bool = True) -> None:
    """``show``'s fields: a name (bold, aligned right), then its value, folded over the
    next lines when it does not fit."""
    keys = max((_width(k) for k, _ in rows), default=0)
    values = max((_width(v) for _, v in rows), default=0)
    room = max(1, min(values, grid.width() - keys - 2))
    columns = [grid.Column(keys, False, key_right, key_style), grid.Column(room, True)]
    grid.write(grid.lines(columns, [list(r) for r in rows]))
