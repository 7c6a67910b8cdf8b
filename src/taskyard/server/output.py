"""Bounded capture of one output stream. Pure: no I/O.

Per stream the first ``head`` bytes are always kept, and of the rest only the
last ``tail`` bytes. Bytes wait here until the server flushes them to the
store. The tail is a list of chunks, so a fast stream costs no copying: chunks
that fall out of the tail window are dropped whole, before they are ever
written, which is what makes a task that writes gigabytes cheap to capture.
"""

from __future__ import annotations

from collections import deque

from ..store.base import OutputWrite

SEAL = 256 * 1024  #: small reads are coalesced into chunks of about this size


class StreamBuffer:
    __slots__ = ("_chunks", "_dropped_to", "_head_buf", "_open", "_tail_len", "_tail_off",
                 "epoch", "first_pending", "head", "stream", "tail", "task_id", "total",
                 "written_total")

    def __init__(self, task_id: int, epoch: int, stream: str, head: int, tail: int) -> None:
        self.task_id = task_id
        self.epoch = epoch
        self.stream = stream
        self.head = head
        self.tail = tail
        self.total = 0  #: bytes read from the child so far
        self.written_total = 0  #: total as last written to the store
        self.first_pending: float | None = None  #: when the oldest unwritten byte arrived
        self._head_buf = bytearray()
        self._chunks: deque[bytes] = deque()  #: sealed tail chunks, oldest first
        self._open = bytearray()  #: the newest tail chunk, still growing
        self._tail_len = 0  #: bytes in _chunks and _open
        self._tail_off = head  #: stream offset of the first pending tail byte
        self._dropped_to = 0  #: the store was told to drop tail chunks before this

    @property
    def pending(self) -> int:
        return len(self._head_buf) + self._tail_len

    @property
    def dirty(self) -> bool:
        return self.total != self.written_total

    @property
    def past_head(self) -> bool:
        return self.total > self.head

    def feed(self, data: bytes, now: float = 0.0) -> None:
        if self.first_pending is None:
            self.first_pending = now
        start = self.total
        self.total += len(data)
        if start < self.head:
            cut = self.head - start
            self._head_buf += data[:cut]
            data = data[cut:]
            if not data:
                return
        if not self._tail_len:
            self._tail_off = self.total - len(data)
        if len(data) >= SEAL:
            self._seal()
            self._chunks.append(data)
        else:
            self._open += data
            if len(self._open) >= SEAL:
                self._seal()
        self._tail_len += len(data)
        self._trim()

    def _seal(self) -> None:
        if self._open:
            self._chunks.append(bytes(self._open))
            self._open = bytearray()

    def _trim(self) -> None:
        """Drop pending tail bytes older than the last ``tail`` bytes of the stream."""
        excess = self._tail_len - self.tail
        while excess > 0 and self._chunks:
            first = self._chunks[0]
            if len(first) <= excess:
                self._chunks.popleft()
            else:
                self._chunks[0] = first[excess:]
            cut = min(len(first), excess)
            self._tail_len -= cut
            self._tail_off += cut
            excess -= cut
        if excess > 0:  # only the open chunk is left
            del self._open[:excess]
            self._tail_len -= excess
            self._tail_off += excess

    def take(self) -> list[OutputWrite]:
        """Writes that bring the store up to date (one per chunk), emptying the buffer."""
        if not self.dirty:
            return []
        self._seal()
        writes: list[OutputWrite] = []
        keep_from = max(self.head, self.total - self.tail)
        drop = keep_from if keep_from > self._dropped_to and keep_from > self.head else 0
        if self._head_buf:
            offset = min(self.total, self.head) - len(self._head_buf)
            writes.append(self._write(offset, bytes(self._head_buf), 0))
            self._head_buf = bytearray()
        offset = self._tail_off
        for chunk in self._chunks:
            writes.append(self._write(offset, chunk, 0))
            offset += len(chunk)
        self._chunks.clear()
        self._tail_off, self._tail_len = offset, 0
        if drop or not writes:
            writes.append(self._write(offset, b"", drop))
        if drop:
            self._dropped_to = drop
        self.written_total = self.total
        self.first_pending = None
        return writes

    def _write(self, offset: int, data: bytes, drop: int) -> OutputWrite:
        return OutputWrite(self.task_id, self.epoch, self.stream, offset, data, self.total,
                           drop, self.head)
