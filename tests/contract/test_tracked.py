"""Tracked tasks on every store: made running with their owner, ended once (fenced by
their attempt), left alone by lost-attempt recovery and by the claim's slot counts, and
stopped through a request their owner reads or that is withdrawn."""

from __future__ import annotations

import os

import pytest

from taskyard import lifecycle, ops, tracked
from taskyard.errors import InvalidInput, StaleAttempt, TransitionError
from taskyard.lifecycle import Reason, Status
from taskyard.model import TaskSpec
from taskyard.store.sqlserver import SqlServerStore
from taskyard.store.tracked import OWNER


def _track(store: SqlServerStore, **kwargs: object) -> int:
    task = tracked.track(store, name="import", meta={"src": "a.csv"}, by="t", **kwargs)  # type: ignore[arg-type]
    return task.id


def test_a_tracked_task_runs_owned_by_its_process(store: SqlServerStore) -> None:
    task_id = _track(store)
    task = store.get(task_id)
    assert (task.status, task.kind, task.attempt, task.pid) == (
        Status.RUNNING, "tracked", 1, os.getpid())
    assert task.to_json()["kind"] == "tracked" and task.meta == {"src": "a.csv"}
    (attempt,) = store.attempts(task_id)
    assert (attempt.owner, attempt.pid, attempt.finished_at) == (OWNER, os.getpid(), None)
    owner = tracked.require_owner(store, task_id)
    assert (owner.pid, owner.epoch, owner.killable) == (os.getpid(), 1, False)
    assert [o.task_id for o in store.tracked_on_host(owner.host)] == [task_id]
    # no server owns it: recovery of dead servers' attempts and liveness leave it alone
    assert store.lost_attempts("s1", float("inf")) == []
    assert store.active_owners() == []
    events = store.events(task_id)
    assert [(e.from_status, e.to_status) for e in events] == [(None, Status.RUNNING)]
    assert all(lifecycle.is_legal(e.from_status, e.to_status) for e in events)


def test_kinds_of_the_other_tasks(store: SqlServerStore) -> None:
    command = store.submit(TaskSpec(argv=("true",)), by="t")
    function = store.submit(TaskSpec(argv=(), function="f"), by="t")
    assert (command.kind, function.kind) == ("command", "function")
    assert store.get(function.id).to_json()["kind"] == "function"


@pytest.mark.parametrize(("status", "message", "reason"), [
    (Status.SUCCEEDED, None, None),
    (Status.FAILED, "the input was empty", Reason.REPORTED),
    (Status.STOPPED, None, Reason.KILLED),
])
def test_its_owner_ends_it_once(store: SqlServerStore, status: Status, message: str | None,
                                reason: Reason | None) -> None:
    task_id = _track(store)
    owner = tracked.require_owner(store, task_id)
    done = tracked.end(store, owner, status, message, by="t")
    assert (done.status, done.reason, done.error) == (status, reason, message)
    (attempt,) = store.attempts(task_id)
    assert (attempt.status, attempt.reason) == (status, reason)
    assert store.tracked_owner(task_id) is None
    with pytest.raises(TransitionError, match="is not running"):
        tracked.end(store, owner, Status.SUCCEEDED, by="t")
    with pytest.raises(StaleAttempt):
        store.set_progress(task_id, 1, 1, 2, None)
    with pytest.raises(TransitionError, match="is not running"):
        tracked.require_owner(store, task_id)


def test_writes_are_fenced_by_the_tracked_attempt(store: SqlServerStore) -> None:
    task_id = _track(store)
    store.set_progress(task_id, 1, 3, 10, "rows")
    assert store.get(task_id).progress.done == 3
    with pytest.raises(StaleAttempt):
        store.set_progress(task_id, 2, 4, 10, None)
    with pytest.raises(StaleAttempt):
        store.patch_meta(task_id, {"a": 1}, 1 << 20, epoch=2)
    with pytest.raises(StaleAttempt):
        store.end_tracked(task_id, 2, Status.SUCCEEDED, None, None, by="t")


def test_bad_input_writes_nothing(store: SqlServerStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        tracked.track(store, meta=[1], by="t")  # type: ignore[arg-type]
    assert caught.value.field == "meta"
    with pytest.raises(InvalidInput, match="no process") as caught:
        tracked.track(store, pid=2**22 + 12345, by="t")
    assert caught.value.field == "pid"
    assert store.list_tasks() == []
    task_id = _track(store)
    with pytest.raises(InvalidInput, match="is not the owner") as caught:
        tracked.require_owner(store, task_id, os.getppid())
    assert caught.value.field == "pid"
    owner = tracked.require_owner(store, task_id)
    with pytest.raises(InvalidInput, match="message"):
        tracked.end(store, owner, Status.FAILED, "", by="t")
    command = store.submit(TaskSpec(argv=("true",)), by="t")
    with pytest.raises(InvalidInput, match="not a tracked one"):
        tracked.require_owner(store, command.id)
    assert store.get(task_id).status is Status.RUNNING


def test_taskyard_does_not_restart_or_pause_what_it_did_not_start(store: SqlServerStore
                                                                   ) -> None:
    task_id = _track(store)
    with pytest.raises(TransitionError, match="tracked"):
        ops.pause(store, task_id)
    tracked.end(store, tracked.require_owner(store, task_id), Status.SUCCEEDED, by="t")
    with pytest.raises(TransitionError, match="tracked"):
        ops.restart(store, task_id)


def test_tracked_tasks_take_no_slot_of_their_queue(store: SqlServerStore) -> None:
    store.set_queue_parallel("default", 1)
    _track(store)
    queued = store.submit(TaskSpec(argv=("true",)), by="t")
    assert [c.task_id for c in store.claim("s1", 4)] == [queued.id]


def test_a_stop_request_read_by_the_owner(store: SqlServerStore, other: SqlServerStore
                                          ) -> None:
    task_id = _track(store)
    owner = tracked.require_owner(store, task_id)
    assert not tracked.stop_asked(store, owner)
    request = other.request_tracked_stop(task_id, {"signal": 15}, by="op")
    assert request.state == "pending"
    assert tracked.stop_asked(store, owner)
    assert other.get_request(request.id).state == "done"
    assert not other.withdraw_tracked_stop(request.id, "too late")  # answered already
    assert store.get(task_id).status is Status.RUNNING  # the owner stops it itself


def test_an_unread_stop_request_is_withdrawn(store: SqlServerStore, other: SqlServerStore
                                             ) -> None:
    task_id = _track(store)
    owner = tracked.require_owner(store, task_id)
    with pytest.raises(TransitionError, match="did not read the stop request within 0.2s"):
        ops.kill(other, task_id, timeout=0.2)
    assert not tracked.stop_asked(store, owner)  # taken back: nothing left to read
    assert store.get(task_id).status is Status.RUNNING


def test_signals_config_and_graceful_stop_reach_the_record(store: SqlServerStore,
                                                           other: SqlServerStore) -> None:
    task_id = _track(store)
    record = tracked.Tracked(store, store.get(task_id), tracked.identify(), by="t")
    ops.send_signal(other, task_id, "reload", {"full": True})
    ops.set_config(other, task_id, {"batch": 50})
    record._ctx._polled = 0  # skip the poll cache
    assert record.config == {"batch": 50}
    assert [(s["name"], s["data"]) for s in record.signals()] == [("reload", {"full": True})]
    ops.ask_stop(other, task_id)
    record._ctx._polled = 0
    assert record.should_stop()
    assert record.meta({"rows": 10}) == {"src": "a.csv", "rows": 10}
    assert record.stop().status is Status.STOPPED


def test_is_live_answers_for_any_task(store: SqlServerStore) -> None:
    queued = store.submit(TaskSpec(argv=("true",)), by="t")
    assert not tracked.is_live(store, queued.id, lease=10.0)
    (claim,) = store.claim("gone-server", 1)  # owned by a server with no heartbeat row
    assert not tracked.is_live(store, claim.task_id, lease=10.0)
    task_id = _track(store)
    assert tracked.is_live(store, task_id, lease=10.0)
    tracked.end(store, tracked.require_owner(store, task_id), Status.SUCCEEDED, by="t")
    assert not tracked.is_live(store, task_id, lease=10.0)
