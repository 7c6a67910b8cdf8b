"""Messages in every store: numbered per attempt, bounded (head and tail), fenced by the
attempt, checked before anything is written, read from any position without consuming."""

from __future__ import annotations

import pytest

from taskyard.errors import InvalidInput, StaleAttempt
from taskyard.lifecycle import Status
from taskyard.messages import HEAD, MessageWrite
from taskyard.model import TaskSpec
from taskyard.store.base import Batch, Outcome
from taskyard.store.sqlserver import SqlServerStore


def _running(store: SqlServerStore) -> tuple[int, int]:
    task = store.submit(TaskSpec(argv=("true",)), by="t")
    (claim,) = store.claim("s1", 1)
    return task.id, claim.epoch


def test_numbered_from_zero_and_read_from_any_position(store: SqlServerStore,
                                                       other: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    assert store.emit_messages(task_id, epoch, [{"a": 1}, "two"]) == 0
    assert other.emit_messages(task_id, epoch, [[3], None]) == 2
    read = other.read_messages(task_id)
    assert [(m.number, m.value, m.raw) for m in read.items] == [
        (0, {"a": 1}, False), (1, "two", False), (2, [3], False), (3, None, False)]
    assert (read.next, read.dropped, read.finished, read.total) == (4, 0, False, 4)
    again = store.read_messages(task_id, since=2)  # reading never consumed them
    assert [m.number for m in again.items] == [2, 3] and again.next == 4
    assert store.read_messages(task_id, since=9).items == []


def test_bad_values_write_nothing(store: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    for bad in ([1, float("nan")], ["x" * (1024 * 1024 + 1)], [{1: 2}], [object()]):
        with pytest.raises(InvalidInput) as caught:
            store.emit_messages(task_id, epoch, bad)
        assert caught.value.field == "message"
    assert store.read_messages(task_id).total == 0


def test_fenced_by_the_attempt(store: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    store.emit_messages(task_id, epoch, [1])
    with pytest.raises(StaleAttempt):
        store.emit_messages(task_id, epoch + 1, [2])
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED, exit_code=0)])
    with pytest.raises(StaleAttempt):
        store.emit_messages(task_id, epoch, [3])
    read = store.read_messages(task_id)
    assert [m.value for m in read.items] == [1] and read.finished


def test_the_head_and_the_tail_are_kept_and_the_dropped_counted(store: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    for start in range(0, HEAD + 50, 100):  # in several writes, as a task emits
        store.emit_messages(task_id, epoch, list(range(start, min(start + 100, HEAD + 50))),
                            tail=20)
    read = store.read_messages(task_id)
    numbers = [m.number for m in read.items]
    assert numbers == list(range(HEAD)) + list(range(HEAD + 30, HEAD + 50))
    assert [m.value for m in read.items] == numbers
    assert (read.total, read.dropped) == (HEAD + 50, 30)
    resumed = store.read_messages(task_id, since=HEAD + 5)  # inside the dropped range
    assert resumed.items[0].number == HEAD + 30 and resumed.next == HEAD + 50


def test_a_servers_pipe_write_is_stored_once_with_its_gap(store: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    store.emit_messages(task_id, epoch, ["cli"], tail=3)  # `taskyard emit` came first
    write = MessageWrite(task_id, epoch, 0, [('"a"', False), ('{"text":"b"}', True),
                                             ('"c"', False)], 1, HEAD, 3)
    assert store.apply("s1", Batch(output=[write])).stale == []
    store.apply("s1", Batch(output=[write]))  # written again after a lost answer
    read = store.read_messages(task_id)
    assert read.total == 1 + 3 + HEAD
    assert [(m.number, m.value, m.raw) for m in read.items[:2]] == [(0, "cli", False),
                                                                   (1, "a", False)]
    assert [(m.number, m.value, m.raw) for m in read.items[-2:]] == [
        (HEAD + 2, {"text": "b"}, True), (HEAD + 3, "c", False)]
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED, exit_code=0)])
    late = write._replace(first=3)
    assert store.apply("s1", Batch(output=[late])).stale == [task_id]


def test_messages_go_with_their_task(store: SqlServerStore) -> None:
    task_id, epoch = _running(store)
    store.emit_messages(task_id, epoch, [1, 2])
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED, exit_code=0)])
    store.delete(task_id)
    fresh, epoch2 = _running(store)
    assert store.read_messages(fresh).total == 0
