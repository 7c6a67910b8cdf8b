"""Messages: a task's third stream, of whole JSON values. Records, bounds and the
encoding of what a task writes; pure.

A task emits messages (``ctx.emit``, a line on ``TASKYARD_MESSAGES_FD``, ``taskyard
emit``). They are numbered from 0 per attempt and kept like output: the first
``HEAD`` and the last ``tail`` (the ``messages_tail`` setting), the count of the
ones dropped between recorded. Reading never consumes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

from .model import JSON

if TYPE_CHECKING:
    from .store.base import ClientStore

HEAD = 1000  #: the first messages of an attempt, always kept
DEFAULT_TAIL = 10_000  #: of the rest, the last this many are kept (``messages_tail``)
MAX_BYTES = 1024 * 1024  #: one message's JSON text at most
CUT_TEXT = 4096  #: of a line over MAX_BYTES, the characters kept in its message


class Message(NamedTuple):
    number: int  #: from 0 in its attempt
    value: JSON
    #: the task wrote a line that was not JSON: ``value`` is ``{"text": line}`` (a line
    #: over the size also has ``"cut"``: its length in bytes)
    raw: bool = False

    def as_json(self) -> dict[str, JSON]:
        return {"n": self.number, "value": self.value, "raw": self.raw}


class MessagesRead(NamedTuple):
    """Messages of one attempt from a number on."""

    items: list[Message]
    next: int  #: the number to read from next (``since``)
    dropped: int  #: messages of this attempt the bound dropped (numbers past the head)
    finished: bool  #: the attempt ended: no message will be added
    total: int = 0  #: messages emitted in this attempt so far
    attempt: int = 0

    def as_json(self) -> dict[str, JSON]:
        return {"items": [m.as_json() for m in self.items], "next": self.next,
                "dropped": self.dropped, "finished": self.finished, "total": self.total,
                "attempt": self.attempt}


class MessageWrite(NamedTuple):
    """Messages read from an attempt's pipe by its server. ``values`` are (JSON text,
    raw); ``gap`` more were read between ``values[gap_at - 1]`` and ``values[gap_at]``
    and dropped in memory (certainly outside the kept head and tail). ``first`` is the
    pipe's count before them: a write the store already has is skipped."""

    task_id: int
    epoch: int
    first: int
    values: list[tuple[str, bool]]
    gap_at: int
    gap: int
    tail: int


def encode(value: JSON) -> str:
    """A value a task emits as stored JSON text (InvalidInput naming ``message`` when it
    is not JSON or over MAX_BYTES)."""
    from .validate import check_json

    return check_json(value, "message", MAX_BYTES)


def from_line(line: bytes) -> tuple[str, bool]:
    """A line a task wrote as (stored JSON text, raw). Not JSON (or over the size): kept
    as ``{"text": ...}`` with the raw flag, never dropped."""
    from .errors import InvalidInput
    from .validate import parse_json_value

    if len(line) > MAX_BYTES:
        return over_size(line, len(line))
    try:
        value = parse_json_value(line, "message", MAX_BYTES)
    except InvalidInput:
        return json.dumps({"text": line.decode("utf-8", "replace")}, ensure_ascii=False), True
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False), False


def over_size(start: bytes, size: int) -> tuple[str, bool]:
    """A line of ``size`` bytes, over MAX_BYTES, beginning with ``start``: its first
    CUT_TEXT characters as raw text, with its size as ``cut``."""
    text = start[:CUT_TEXT].decode("utf-8", "replace")
    return json.dumps({"text": text, "cut": size}, ensure_ascii=False), True


def kept(number: int, total: int, tail: int) -> bool:
    """Whether message ``number`` of ``total`` is kept under the bound."""
    return number < HEAD or number >= total - tail


READ_LIMIT = 1000  #: messages a read returns at most by default
MAX_READ = 10_000  #: ... and at most


def read(store: ClientStore, task_id: int, since: int = 0, limit: int | None = READ_LIMIT,
         attempt: int | None = None) -> MessagesRead:
    """Messages of a task's attempt (the latest by default) from number ``since``, the
    arguments checked (InvalidInput, NotFound naming the field)."""
    from .errors import InvalidInput, NotFound

    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidInput("since must be a message number (an integer >= 0)", field="since")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 1 <= limit <= MAX_READ):
        raise InvalidInput(f"limit must be from 1 to {MAX_READ}", field="limit")
    if attempt is not None and not 1 <= attempt <= store.get(task_id).attempt:
        raise NotFound(f"task {task_id} has no attempt {attempt}", field="attempt")
    return store.read_messages(task_id, since, limit, attempt)
