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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

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
    """A rich console for our tables. On a closed pipe (``| head``) rich would exit 1;
    this one raises BrokenPipeError, which main() ends quietly with 0, as for any
    other command."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(highlight=False)


def _width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


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


def table(cols: Sequence[Col], rows: Sequence[Sequence[str | Text]], *,
          title: str | None = None, out: Console | None = None) -> None:
    """Print a borderless table fitted to the console's width (see :func:`fit_widths`).
    Cells are printed as given (pass text through ``render.safe``); a ``Text`` keeps
    its style."""
    from rich.table import Table
    from rich.text import Text

    out = out or console()
    plain = [[c if isinstance(c, str) else c.plain for c in row] for row in rows]
    natural, time_floors = [], []
    for i, col in enumerate(cols):
        cells = [row[i] for row in plain]
        width = max([_width(col.head)] + [_width(c) for c in cells])
        if col.cap is not None:
            width = min(width, max(col.cap, _width(col.head)))
        natural.append(width)
        time_floors.append(max([0] + [_time_floor(c) for c in cells]))
    widths = fit_widths(cols, natural, out.width, time_floors)
    grid = Table(box=None, pad_edge=False, header_style="bold", title=title,
                 title_justify="left")
    for col, width in zip(cols, widths, strict=True):
        whole = col.kind in (FIXED, CUT)
        grid.add_column(col.head, width=width, no_wrap=whole,
                        overflow="ellipsis" if whole else "fold",
                        justify="right" if col.right else "left")
    for row in rows:  # str as Text: task data is never markup ("[/x]" was a MarkupError)
        grid.add_row(*(Text(c) if isinstance(c, str) else c for c in row))
    # Wider than the console only when even FIXED columns do not fit: print it whole
    # (the terminal wraps the lines) rather than let rich cut ids and statuses.
    needed = sum(widths) + 2 * (len(widths) - 1)
    out.print(grid, width=max(out.width, needed))
