"""Per-task output bounds: how many bytes of each stream a task keeps from its start
(head) and from its end (tail). Pure.

A task's own bounds win, else its queue's, else the server's (``output_head_mib``,
``output_tail_mib``). A tail of 0 keeps only the head. A tail is at most what the
server allows (``max_output_tail_mib``): checked at submit against the submitter's
settings, and again by the server that runs it, which records the bounds it used on
the attempt.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import InvalidInput

MAX_HEAD = 1 << 30  #: 1 GiB, as the output_head_mib setting allows
MAX_TAIL = 1 << 40  #: 1 TiB, as the output_tail_mib setting allows


class Bounds(NamedTuple):
    head: int
    tail: int


def parse(value: object, field: str) -> int:
    """``1M``, ``512K``, ``0`` or a number of bytes (units are powers of 1024)."""
    from .limits import size_value

    size = size_value(value, field, "1M, 512K")
    if size < 0:
        raise InvalidInput(f"{field} must be 0 or more bytes", field=field)
    return size


def parse_optional(value: object, field: str) -> int | None:
    return None if value is None else parse(value, field)


def check(head: int | None, tail: int | None, max_tail: int | None = None) -> None:
    """Refuse bounds out of range (``max_tail``: the submitter's max_output_tail)."""
    _check_one(head, "output_head", MAX_HEAD)
    _check_one(tail, "output_tail", MAX_TAIL if max_tail is None else min(max_tail, MAX_TAIL))


def _check_one(size: int | None, field: str, top: int) -> None:
    if size is None:
        return
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= top:
        from .limits import size_text

        allows = " (max_output_tail_mib: what the server allows)" if field == "output_tail" else ""
        raise InvalidInput(f"{field} must be a number of bytes from 0 to {size_text(top)}"
                           + allows, field=field)


def resolve(own: tuple[int | None, int | None], queue: tuple[int | None, int | None] | None,
            server: Bounds, max_tail: int) -> Bounds:
    """The bounds an attempt runs with: the task's, else its queue's, else the server's;
    a tail over what this server allows is cut to it."""
    queue = queue or (None, None)
    head = own[0] if own[0] is not None else queue[0] if queue[0] is not None else server.head
    tail = own[1] if own[1] is not None else queue[1] if queue[1] is not None else server.tail
    return Bounds(min(head, MAX_HEAD), min(tail, max_tail))
