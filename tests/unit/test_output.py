"""The output bound, end to end through the store: head and tail kept, the middle
reported as dropped, the true byte count kept."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.server.output import StreamBuffer
from taskyard.store.base import Batch, Outcome
from taskyard.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "t.db")


def _run(store: SQLiteStore, data: bytes, head: int, tail: int, pieces: list[int],
         flush_every: int) -> int:
    task = store.submit(TaskSpec(argv=("x",)), by="t")
    (claim,) = store.claim("me", 1)
    buf = StreamBuffer(task.id, claim.epoch, "stdout", head, tail)
    pos = 0
    for i, size in enumerate(pieces):
        buf.feed(data[pos:pos + size])
        pos += size
        if i % flush_every == 0:
            store.append_output("me", buf.take())
    store.apply("me", Batch(output=buf.take(),
                            outcomes=[Outcome(task.id, claim.epoch, Status.SUCCEEDED)]))
    return task.id


def _split(total: int, rng: random.Random) -> list[int]:
    pieces = []
    while total > 0:
        size = min(total, rng.randint(1, 5000))
        pieces.append(size)
        total -= size
    return pieces


@pytest.mark.parametrize("seed", range(6))
def test_head_and_tail_are_kept_exactly(store: SQLiteStore, seed: int) -> None:
    rng = random.Random(seed)
    data = os.urandom(rng.randint(1, 60_000))
    head, tail = rng.randint(1, 9000), rng.randint(1, 20_000)
    task_id = _run(store, data, head, tail, _split(len(data), rng), rng.randint(1, 4))
    whole = store.read_output(task_id, "stdout", 0, None)
    assert whole.total == len(data) and whole.finished
    kept_head = data[:head]
    assert whole.data.startswith(kept_head[: len(whole.data)])
    # read everything in steps, following dropped ranges
    got, offset, dropped = b"", 0, []
    while offset < len(data):
        r = store.read_output(task_id, "stdout", offset, 3000)
        if r.dropped:
            dropped.append(r.dropped)
        got += r.data
        assert r.next_offset > offset
        offset = r.next_offset
    gap = sum(end - start for start, end in dropped)
    assert len(got) + gap == len(data)
    if len(data) <= head + tail:
        assert got == data and not dropped
    elif not dropped:  # tail chunks are dropped whole: a small excess may all be kept
        assert got == data
    else:
        assert len(dropped) == 1
        start, end = dropped[0]
        assert start == head and end <= len(data) - tail
        assert got == data[:start] + data[end:]


def test_reading_inside_the_dropped_range_says_so(store: SQLiteStore) -> None:
    data = bytes(range(256)) * 400  # 102,400 bytes
    task_id = _run(store, data, 1000, 2000, [4096] * 25 + [len(data) - 4096 * 25], 1)
    r = store.read_output(task_id, "stdout", 5000, 10)
    assert r.dropped is not None and r.dropped[0] == 5000
    gap_end = r.dropped[1]
    assert len(data) - 2000 - 4096 < gap_end <= len(data) - 2000
    assert r.data == data[gap_end:gap_end + 10] and r.next_offset == gap_end + 10
    r = store.read_output(task_id, "stdout", 900, 500)
    assert r.dropped is None and r.data == data[900:1000] and r.next_offset == 1000
    tail = store.read_output(task_id, "stdout", len(data) - 100, None)
    assert tail.data == data[-100:] and tail.dropped is None


def test_buffer_memory_is_bounded_by_the_tail() -> None:
    buf = StreamBuffer(1, 1, "stdout", head=10, tail=100)
    for _ in range(1000):
        buf.feed(b"x" * 1000)
    assert buf.pending <= 110
    writes = buf.take()
    assert sum(len(w.data) for w in writes) <= 110
    assert writes[-1].total == 1_000_000 and writes[-1].drop_before == 1_000_000 - 100
