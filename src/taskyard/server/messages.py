"""The messages pipe of one command attempt (``TASKYARD_MESSAGES_FD``): bytes split
into lines, each line one message, held until the server flushes them. Pure: no I/O.

It is flushed like an output stream (``StreamBuffer``'s interface: ``feed``, ``take``,
``pending``, ``dirty``...), so the loop reads, paces and bounds both alike. Numbers
are given by the store (``taskyard emit`` may write to the same attempt); in memory,
messages that the store's bound would certainly drop (past the head, with ``tail``
newer ones behind them) are only counted.
"""

from __future__ import annotations

from collections import deque

from ..messages import HEAD, MAX_BYTES, MessageWrite, from_line, over_size

FD_ENV = b"TASKYARD_MESSAGES_FD"


class MessageBuffer:
    __slots__ = ("_cut", "_gap", "_head", "_line", "_tail", "epoch", "first_pending",
                 "pending", "read", "stream", "tail", "task_id", "written")

    def __init__(self, task_id: int, epoch: int, tail: int) -> None:
        self.task_id = task_id
        self.epoch = epoch
        self.tail = tail
        self.stream = "messages"
        self.read = 0  #: messages read from the pipe so far
        self.written = 0  #: ... of which handed to the store
        self.pending = 0  #: bytes held (lines not yet taken, the unfinished line)
        self.first_pending: float | None = None
        self._line = bytearray()  #: the unfinished line
        self._cut = 0  #: bytes of an over-size line past what _line holds
        self._head: list[tuple[str, bool]] = []  #: messages that may be in the head
        self._tail: deque[tuple[str, bool]] = deque()  #: the newest, at most ``tail``
        self._gap = 0  #: messages read between _head and _tail, dropped here

    @property
    def dirty(self) -> bool:
        return self.read != self.written

    @property
    def past_head(self) -> bool:
        return self.read > HEAD

    def feed(self, data: bytes, now: float = 0.0) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._extend(data[start:])
                return
            self._extend(data[start:end])
            self._line_done(now)
            start = end + 1

    def at_eof(self, now: float = 0.0) -> None:
        """The pipe closed: an unfinished last line is a message too."""
        if self._line or self._cut:
            self._line_done(now)

    def _extend(self, part: bytes) -> None:
        room = MAX_BYTES + 1 - len(self._line)  # one byte more tells it is over the size
        if len(part) > room:
            self._cut += len(part) - room
            part = part[:room]
        self._line += part
        self.pending += len(part)

    def _line_done(self, now: float) -> None:
        line, cut = bytes(self._line), self._cut
        self.pending -= len(line)
        self._line.clear()
        self._cut = 0
        if not line.strip() and not cut:
            return  # blank lines are no messages
        body, raw = over_size(line, len(line) + cut) if cut else from_line(line)
        self._add(body, raw, now)

    def _add(self, body: str, raw: bool, now: float) -> None:
        if self.first_pending is None:
            self.first_pending = now
        if self.read < HEAD:
            self._head.append((body, raw))
        else:
            self._tail.append((body, raw))
            if len(self._tail) > self.tail:
                self.pending -= len(self._tail.popleft()[0])
                self._gap += 1
        self.pending += len(body)
        self.read += 1

    def take(self) -> list[MessageWrite]:
        """The write that brings the store up to date, emptying the buffer."""
        if not self.dirty:
            return []
        values = self._head + list(self._tail)
        write = MessageWrite(self.task_id, self.epoch, self.written, values, len(self._head),
                             self._gap, self.tail)
        self.pending -= sum(len(body) for body, _ in values)
        self._head, self._tail, self._gap = [], deque(), 0
        self.written = self.read
        self.first_pending = None
        return [write]

