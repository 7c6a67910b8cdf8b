"""Bounded capture of one output stream. Pure: no I/O.

Per stream the first ``head`` bytes are always kept, and of the rest only the
last ``tail`` bytes. Bytes wait here until the server flushes them to the store;
memory stays bounded because the server flushes once ``pending`` passes a
threshold, and bytes that fall out of the tail window are dropped before they
are ever written.
"""

from __future__ import annotations

from ..store.base import OutputWrite


class StreamBuffer:
    __slots__ = ("_dropped_to", "_head_buf", "_tail_buf", "_tail_off", "epoch", "head",
                 "stream", "tail", "task_id", "total", "written_total")

    def __init__(self, task_id: int, epoch: int, stream: str, head: int, tail: int) -> None:
        self.task_id = task_id
        self.epoch = epoch
        self.stream = stream
        self.head = head
        self.tail = tail
        self.total = 0  #: bytes read from the child so far
        self.written_total = 0  #: total as last written to the store
        self._head_buf = bytearray()
        self._tail_buf = bytearray()
        self._tail_off = head  #: stream offset of _tail_buf[0]
        self._dropped_to = 0  #: the store was told to drop tail chunks before this

    @property
    def pending(self) -> int:
        return len(self._head_buf) + len(self._tail_buf)

    @property
    def dirty(self) -> bool:
        return self.total != self.written_total

    def feed(self, data: bytes) -> None:
        start = self.total
        self.total += len(data)
        if start < self.head:
            cut = self.head - start
            self._head_buf += data[:cut]
            data = data[cut:]
            if not data:
                return
        if not self._tail_buf:
            self._tail_off = self.total - len(data)
        self._tail_buf += data
        keep_from = self.total - self.tail
        excess = keep_from - self._tail_off
        if excess > 0:
            del self._tail_buf[:excess]
            self._tail_off = keep_from

    def take(self) -> list[OutputWrite]:
        """Writes that bring the store up to date, and empty the buffers."""
        if not self.dirty:
            return []
        writes: list[OutputWrite] = []
        keep_from = max(self.head, self.total - self.tail)
        drop = keep_from if keep_from > self._dropped_to and keep_from > self.head else 0
        if self._head_buf:
            offset = min(self.total, self.head) - len(self._head_buf)
            writes.append(self._write(offset, bytes(self._head_buf), 0))
            self._head_buf.clear()
        if self._tail_buf or not writes or drop:
            writes.append(self._write(self._tail_off, bytes(self._tail_buf), drop))
            self._tail_off += len(self._tail_buf)
            self._tail_buf.clear()
        if drop:
            self._dropped_to = drop
        self.written_total = self.total
        return writes

    def _write(self, offset: int, data: bytes, drop: int) -> OutputWrite:
        return OutputWrite(self.task_id, self.epoch, self.stream, offset, data, self.total,
                           drop, self.head)
