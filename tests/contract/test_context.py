"""``ctx`` semantics on a real store (every backend): progress throttling, signals,
live config, graceful stop, checkpoints and metadata, all fenced by the epoch."""

from __future__ import annotations

import pytest

from taskyard.context import Context
from taskyard.errors import InvalidInput, StaleAttempt, TransitionError
from taskyard.lifecycle import Reason, Status
from taskyard.model import TaskSpec
from taskyard.store.base import Outcome
from taskyard.store.sqlite import SQLiteStore

FN = TaskSpec(argv=(), function="resize", kwargs={"path": "a.png"})


def _running(store: SQLiteStore) -> tuple[int, int]:
    task = store.submit(FN, by="t")
    (claim,) = store.claim("s1", 1)
    assert (claim.function, claim.kwargs) == ("resize", '{"path":"a.png"}')
    return task.id, claim.epoch


def _ctx(store: SQLiteStore, task_id: int, epoch: int) -> Context:
    ctx = Context(lambda: store, task_id, epoch)
    ctx._store = store  # share the test's store; close() must not close it
    return ctx


def test_progress_is_throttled_and_the_last_value_lands(store: SQLiteStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    task_id, epoch = _running(store)
    ctx = _ctx(store, task_id, epoch)
    writes = []
    real = store.set_progress
    monkeypatch.setattr(store, "set_progress", lambda *a: (writes.append(a), real(*a)))
    for i in range(20_000):
        ctx.progress(i, 20_000, "working")
    ctx.flush()
    assert len(writes) < 50
    assert store.get(task_id).progress.done == 19_999


def test_signals_are_read_once_and_cleared(store: SQLiteStore, other: SQLiteStore) -> None:
    task_id, epoch = _running(store)
    ctx = _ctx(store, task_id, epoch)
    assert ctx.signals() == []
    other.send_signal(task_id, "reload", '{"full":true}', by="op")
    other.send_signal(task_id, "rotate", None, by="op")
    ctx._polled = 0  # skip the poll cache
    got = ctx.signals(clear=False)
    assert [(s["name"], s["data"]) for s in got] == [("reload", {"full": True}), ("rotate", None)]
    assert [s["name"] for s in ctx.signals()] == ["reload", "rotate"]
    assert other.signals(task_id) == []


def test_config_changes_are_seen_and_call_back(store: SQLiteStore, other: SQLiteStore) -> None:
    task_id, epoch = _running(store)
    ctx = _ctx(store, task_id, epoch)
    seen: list[object] = []
    ctx.on_config(lambda config: seen.append(config.get("rate")))
    assert ctx.config == {}
    other.set_config(task_id, {"rate": 5, "mode": "fast"}, 1 << 20)
    ctx._polled = 0
    assert ctx.config == {"rate": 5, "mode": "fast"}
    other.set_config(task_id, {"mode": None}, 1 << 20)
    ctx._polled = 0
    assert ctx.config == {"rate": 5} and seen == [None, 5, 5]
    with pytest.raises(InvalidInput, match="on_config"):
        ctx.on_config(5)  # type: ignore[arg-type]


def test_graceful_stop_is_for_the_current_attempt(store: SQLiteStore) -> None:
    task_id, epoch = _running(store)
    ctx = _ctx(store, task_id, epoch)
    assert not ctx.should_stop()
    store.ask_stop(task_id)
    ctx._polled = 0
    assert ctx.should_stop()
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED, result="1")])
    with pytest.raises(TransitionError):
        store.ask_stop(task_id)
    assert store.get(task_id).result == 1


def test_checkpoints_carry_over_and_stale_attempts_cannot_write(store: SQLiteStore) -> None:
    task_id, epoch = _running(store)
    ctx = _ctx(store, task_id, epoch)
    assert ctx.state is None
    ctx.checkpoint({"row": 10})
    ctx.update_meta({"rows": 10})
    store.finish("s1", [Outcome(task_id, epoch, Status.FAILED, Reason.EXCEPTION,
                                error="ValueError: x")])
    store.restart(task_id, by="op")
    (claim,) = store.claim("s2", 1)
    fresh = _ctx(store, task_id, claim.epoch)
    assert fresh.state == {"row": 10} and fresh.meta == {"rows": 10}
    for write in (lambda: ctx.checkpoint({"row": 99}), lambda: ctx.progress(1, 2),
                  lambda: ctx.update_meta({"rows": 99}), lambda: ctx.signals(clear=True)):
        ctx._progress_written = 0
        with pytest.raises(StaleAttempt):
            write()
    assert store.load_state(task_id)[0] == '{"row":10}'
    assert store.get(task_id).meta == {"rows": 10}


def test_signal_or_config_of_an_ended_task_is_refused(store: SQLiteStore) -> None:
    task_id, epoch = _running(store)
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED, result="null")])
    with pytest.raises(TransitionError):
        store.send_signal(task_id, "x", None, by="op")
    with pytest.raises(TransitionError):
        store.set_config(task_id, {"a": 1}, 1 << 20)
