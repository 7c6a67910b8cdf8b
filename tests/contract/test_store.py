"""The store contract: what every backend must do, checked through its public API."""

from __future__ import annotations

import pytest

from taskyard import lifecycle
from taskyard.errors import NotFound, StaleAttempt, TransitionError
from taskyard.lifecycle import Reason, Status
from taskyard.model import TaskSpec
from taskyard.store.base import Batch, Instance, Outcome, OutputWrite, Spawned
from taskyard.store.sqlite import SQLiteStore

SPEC = TaskSpec(argv=("echo", "hi"), name="n", env={"A": "1"}, cwd="/tmp", meta={"k": [1]})


def _claim_one(store: SQLiteStore, owner: str = "s1") -> tuple[int, int]:
    """Submit a task and claim it (the only queued one)."""
    store.submit(SPEC, by="t")
    (claim,) = store.claim(owner, 1)
    return claim.task_id, claim.epoch


def test_submit_is_durable_and_readable_from_another_connection(
        store: SQLiteStore, other: SQLiteStore) -> None:
    task = store.submit(SPEC, by="alice")
    seen = other.get(task.id)
    assert seen == task
    assert (seen.status, seen.attempt, seen.argv, seen.meta) == (Status.QUEUED, 0, ("echo", "hi"),
                                                                 {"k": [1]})
    assert [e.to_status for e in other.events(task.id)] == [Status.QUEUED]
    assert other.events(task.id)[0].by == "alice"


def test_unknown_ids(store: SQLiteStore) -> None:
    for call in (store.get, store.attempts, store.events, store.delete):
        with pytest.raises(NotFound):
            call(12345)


def test_claim_is_fifo_and_each_claim_is_a_new_epoch(store: SQLiteStore) -> None:
    ids = [store.submit(SPEC, by="t").id for _ in range(3)]
    claims = store.claim("s1", 2)
    assert [c.task_id for c in claims] == ids[:2]
    assert all(c.epoch == 1 for c in claims)
    assert [c.task_id for c in store.claim("s2", 5)] == ids[2:]
    assert store.claim("s2", 5) == []
    assert claims[0].env == {"A": "1"} and claims[0].cwd == "/tmp"
    assert claims[0].run_tag.startswith("s1.")


def test_two_connections_never_claim_the_same_task(store: SQLiteStore,
                                                   other: SQLiteStore) -> None:
    for _ in range(20):
        store.submit(SPEC, by="t")
    got: list[int] = []
    for _ in range(10):
        got += [c.task_id for c in store.claim("a", 1)]
        got += [c.task_id for c in other.claim("b", 1)]
    assert sorted(got) == sorted(set(got)) and len(got) == 20


def test_concurrent_claimers_claim_every_task_exactly_once(store: SQLiteStore,
                                                          backend: str) -> None:
    """RELIABILITY 6.4, scaled for CI: 8 connections in threads claim and finish one
    task at a time, as fast as they can, from 600 queued tasks."""
    import threading

    from tests.contract.conftest import REOPEN

    for _ in range(600):
        store.submit(SPEC, by="t")
    claimed: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        s = REOPEN[backend](store)
        try:
            owner, previous = f"c{n}", []
            while True:
                claims = s.apply(owner, Batch(outcomes=previous, claim=1)).claims
                if not claims:
                    break
                claimed[n] += [c.task_id for c in claims]
                previous = [Outcome(c.task_id, c.epoch, Status.SUCCEEDED) for c in claims]
            s.apply(owner, Batch(outcomes=previous))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    everyone = [task_id for mine in claimed for task_id in mine]
    assert len(everyone) == 600 and len(set(everyone)) == 600
    assert sum(1 for mine in claimed if mine) >= 2, "the claims were shared"
    assert {t.status for t in store.list_tasks(status=[], queue=None, limit=None)} == {
        Status.SUCCEEDED}


def test_finish_is_fenced_by_epoch_and_owner(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    done = Outcome(task_id, epoch, Status.SUCCEEDED)
    assert store.finish("intruder", [done]) == [task_id]
    assert store.finish("s1", [Outcome(task_id, epoch + 1, Status.SUCCEEDED)]) == [task_id]
    assert store.get(task_id).status is Status.RUNNING
    assert store.finish("s1", [done]) == []
    assert store.finish("s1", [done]) == [task_id]  # a second finish is stale too
    task = store.get(task_id)
    assert task.status is Status.SUCCEEDED and task.finished_at is not None
    (attempt,) = store.attempts(task_id)
    assert attempt.status is Status.SUCCEEDED and attempt.finished_at is not None


def test_restart_makes_a_new_attempt_and_keeps_the_old(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    assert epoch == 1
    store.apply("s1", Batch(output=[OutputWrite(task_id, epoch, "stdout", 0, b"one", 3, 0, 100)],
                            outcomes=[Outcome(task_id, epoch, Status.FAILED, Reason.EXIT,
                                              exit_code=3)]))
    with pytest.raises(TransitionError):
        store.restart(store.submit(SPEC, by="t").id, by="t")  # queued: not restartable
    task = store.restart(task_id, by="bob")
    assert (task.status, task.reason, task.exit_code) == (Status.QUEUED, None, None)
    (claim,) = [c for c in store.claim("s2", 5) if c.task_id == task_id]
    assert claim.epoch == 2
    assert [a.epoch for a in store.attempts(task_id)] == [1, 2]
    assert store.read_output(task_id, "stdout", 0, None, epoch=1).data == b"one"
    assert store.read_output(task_id, "stdout", 0, None).data == b""


def test_stale_output_is_rejected(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    write = OutputWrite(task_id, epoch, "stdout", 0, b"x", 1, 0, 10)
    with pytest.raises(StaleAttempt):
        store.append_output("intruder", [write])
    store.append_output("s1", [write])
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED)])
    with pytest.raises(StaleAttempt):
        store.append_output("s1", [OutputWrite(task_id, epoch, "stdout", 1, b"y", 2, 0, 10)])
    assert store.read_output(task_id, "stdout", 0, None).data == b"x"


def test_output_round_trips_bytes(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    blob = bytes(range(256)) * 10 + b"\xff\x00\xfe"
    store.append_output("s1", [OutputWrite(task_id, epoch, "stderr", 0, blob[:1000], 1000, 0, 4096),
                               OutputWrite(task_id, epoch, "stderr", 1000, blob[1000:],
                                           len(blob), 0, 4096)])
    r = store.read_output(task_id, "stderr", 0, None)
    assert r.data == blob and r.total == len(blob) and not r.finished
    assert store.read_output(task_id, "stderr", 990, 20).data == blob[990:1010]


def test_cancel_only_waiting_tasks(store: SQLiteStore) -> None:
    queued = store.submit(SPEC, by="t")
    stopped = store.cancel(queued.id, by="carol")
    assert stopped is not None and stopped.status is Status.STOPPED
    assert stopped.reason is Reason.KILLED
    running, _ = _claim_one(store)
    assert store.cancel(running, by="carol") is None
    assert store.claim("s1", 5) == []


def test_requests_and_pause_transitions(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    waiting = store.submit(SPEC, by="t")
    with pytest.raises(TransitionError):
        store.add_request(waiting.id, "kill", {"signal": 15}, by="t")
    req = store.add_request(task_id, "pause", None, by="dave")
    assert [r.id for r in store.pending_requests("s1")] == [req.id]
    assert store.pending_requests("s2") == []
    store.set_paused("s1", task_id, epoch, True, "server:s1")
    with pytest.raises(StaleAttempt):
        store.set_paused("s1", task_id, epoch, True, "server:s1")
    store.complete_request(req.id, "done", None)
    assert store.get_request(req.id).state == "done"
    assert store.get(task_id).status is Status.PAUSED
    pending = store.add_request(task_id, "kill", {"signal": 9}, by="dave")
    store.finish("s1", [Outcome(task_id, epoch, Status.STOPPED, Reason.KILLED, signal=9)])
    # still listed for its owner, whose next pass rejects it ("the attempt has ended")
    assert [r.id for r in store.pending_requests("s1")] == [pending.id]
    history = [(e.from_status, e.to_status) for e in store.events(task_id)]
    assert all(lifecycle.is_legal(a, b) for a, b in history)
    assert history[-1] == (Status.PAUSED, Status.STOPPED)


def test_progress_is_fenced(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    store.set_progress(task_id, epoch, 3, 10, "three")
    assert store.get(task_id).progress.to_json() == {"done": 3, "total": 10, "message": "three"}
    with pytest.raises(StaleAttempt):
        store.set_progress(task_id, epoch + 1, 4, 10, None)
    store.finish("s1", [Outcome(task_id, epoch, Status.SUCCEEDED)])
    with pytest.raises(StaleAttempt):
        store.set_progress(task_id, epoch, 5, 10, None)


def test_meta_merge_patch_and_cap(store: SQLiteStore) -> None:
    task = store.submit(SPEC, by="t")
    assert store.patch_meta(task.id, {"k": None, "x": {"y": 1}}, 1000).meta == {"x": {"y": 1}}
    from taskyard.errors import InvalidInput

    with pytest.raises(InvalidInput):
        store.patch_meta(task.id, {"big": "x" * 2000}, 1000)
    assert store.get(task.id).meta == {"x": {"y": 1}}


def test_delete_only_terminal_and_everything_goes(store: SQLiteStore) -> None:
    task_id, epoch = _claim_one(store)
    with pytest.raises(TransitionError):
        store.delete(task_id)
    store.apply("s1", Batch(output=[OutputWrite(task_id, epoch, "stdout", 0, b"x", 1, 0, 10)],
                            outcomes=[Outcome(task_id, epoch, Status.SUCCEEDED)]))
    store.delete(task_id)
    with pytest.raises(NotFound):
        store.get(task_id)
    assert store.submit(SPEC, by="t").id > task_id  # ids are never reused


def test_lost_attempts_and_crash(store: SQLiteStore) -> None:
    now = 1000.0
    store.register(Instance("dead", "h", "b", 1, 2, now, now, None, None))
    store.register(Instance("live", "h", "b", 2, 2, now, now + 100, None, None))
    store.submit(SPEC, by="t")
    store.submit(SPEC, by="t")
    (a,) = store.claim("dead", 1)
    (b,) = store.claim("live", 1)
    store.record_spawned("dead", [Spawned(a.task_id, a.epoch, 4242, 99)])
    lost = store.lost_attempts("me", dead_before=now + 50)
    assert [(x.task_id, x.pid, x.pid_start) for x in lost] == [(a.task_id, 4242, 99)]
    store.crash(lost[0], by="server:me")
    task = store.get(a.task_id)
    assert (task.status, task.reason) == (Status.FAILED, Reason.CRASHED)
    assert store.finish("dead", [Outcome(a.task_id, a.epoch, Status.SUCCEEDED)]) == [a.task_id]
    assert store.lost_attempts("me", dead_before=now + 50) == []
    assert store.get(b.task_id).status is Status.RUNNING


def test_heartbeat_and_stop_request(store: SQLiteStore) -> None:
    store.register(Instance("i1", "h", "b", 1, 2, 1.0, 1.0, None, None))
    assert [i.id for i in store.instances()] == ["i1"]
    store.request_stop("i1", "now")
    assert store.heartbeat("i1", 2.0).stop_request == "now"
    store.unregister("i1", 3.0)
    assert store.instances() == []
    from taskyard.errors import Fenced

    with pytest.raises(Fenced):
        store.heartbeat("i1", 4.0)
    store.register(Instance("i2", "h", "b", 1, 2, 1.0, 1.0, None, None))
    store.fence("i2", 5.0)  # declared dead by a peer: its next heartbeat fails
    assert store.instances() == []
    with pytest.raises(Fenced):
        store.heartbeat("i2", 6.0)


def test_priority_then_fifo(store: SQLiteStore) -> None:
    low = store.submit(SPEC._replace(priority=-1), by="t").id
    a = store.submit(SPEC, by="t").id
    high = store.submit(SPEC._replace(priority=5), by="t").id
    b = store.submit(SPEC, by="t").id
    assert [c.task_id for c in store.claim("s1", 4)] == [high, a, b, low]


def test_scheduled_tasks_wait_until_due(store: SQLiteStore) -> None:
    import time

    now = time.time()
    later = store.submit(SPEC._replace(run_at=now + 1000), by="t")
    soon = store.submit(SPEC._replace(run_at=now + 100), by="t")
    past = store.submit(SPEC._replace(run_at=now - 5), by="t")
    assert (later.status, soon.status, past.status) == (
        Status.SCHEDULED, Status.SCHEDULED, Status.QUEUED)
    assert [c.task_id for c in store.claim("s1", 5)] == [past.id]
    assert store.next_due() == pytest.approx(now + 100)
    assert store.promote_due(now + 200, "server:s1") == 1
    assert store.get(soon.id).status is Status.QUEUED
    assert [e.to_status for e in store.events(soon.id)] == [Status.SCHEDULED, Status.QUEUED]
    assert store.cancel(later.id, by="u") is not None
    assert store.next_due() is None


def test_failed_attempts_are_retried_then_fail(store: SQLiteStore) -> None:
    import time

    task = store.submit(SPEC._replace(retries=2, retry_delay=10.0, backoff="fixed"), by="t")
    for expected in (Status.SCHEDULED, Status.SCHEDULED, Status.FAILED):
        store.promote_due(time.time() + 3600, "s")
        (claim,) = store.claim("s1", 1)
        store.finish("s1", [Outcome(task.id, claim.epoch, Status.FAILED, Reason.EXIT,
                                    exit_code=1)])
        got = store.get(task.id)
        assert got.status is expected and got.exit_code == 1
        if expected is Status.SCHEDULED:
            assert got.run_at is not None and got.run_at > time.time() + 5
    assert got.retried == 2 and [a.epoch for a in store.attempts(task.id)] == [1, 2, 3]
    assert store.restart(task.id, by="u").retried == 0
    history = [(e.from_status, e.to_status) for e in store.events(task.id)]
    assert (Status.FAILED, Status.SCHEDULED) in history
    assert all(lifecycle.is_legal(a, b) for a, b in history)


def test_only_listed_reasons_are_retried(store: SQLiteStore) -> None:
    import time

    plain = store.submit(SPEC._replace(retries=3), by="t")
    crashy = store.submit(SPEC._replace(retries=3, retry_on=("crashed",)), by="t")
    now = time.time()
    store.register(Instance("dead", "h", "b", 1, 2, now, now, None, None))
    claims = {c.task_id: c for c in store.claim("dead", 2)}
    for lost in store.lost_attempts("me", dead_before=now + 10):
        store.crash(lost, by="server:me")
    assert store.get(plain.id).status is Status.FAILED  # crashed: not retried by default
    assert store.get(crashy.id).status is Status.SCHEDULED
    assert claims[crashy.id].epoch == 1


def _succeed(store: SQLiteStore, task_id: int, status: Status = Status.SUCCEEDED) -> None:
    (claim,) = [c for c in store.claim("s1", 10) if c.task_id == task_id]
    reason = {Status.FAILED: Reason.EXIT, Status.STOPPED: Reason.KILLED}.get(status)
    assert store.finish("s1", [Outcome(task_id, claim.epoch, status, reason)]) == []


def test_dependencies_wait_then_run_or_fail_down_the_chain(store: SQLiteStore) -> None:
    import time

    first = store.submit(SPEC, by="t")
    with pytest.raises(NotFound, match="after"):
        store.submit(SPEC._replace(after=(first.id, 9999)), by="t")
    second = store.submit(SPEC._replace(after=(first.id,)), by="t")
    third = store.submit(SPEC._replace(after=(second.id,)), by="t")
    assert second.status is Status.SCHEDULED and third.status is Status.SCHEDULED
    assert store.promote_due(time.time(), "s") == 0
    _succeed(store, first.id)
    assert store.promote_due(time.time(), "s") == 1
    assert store.get(second.id).status is Status.QUEUED
    assert store.waiting_on(second.id) == third.id and store.waiting_on(third.id) is None
    with pytest.raises(TransitionError, match="waits for it"):
        _succeed(store, second.id, Status.FAILED)
        store.delete(second.id)
    store.promote_due(time.time(), "s")
    failed = store.get(third.id)
    assert (failed.status, failed.reason) == (Status.FAILED, Reason.DEPENDENCY)
    assert store.submit(SPEC._replace(after=(first.id,)), by="t").status is Status.QUEUED


def test_a_stopped_dependency_fails_a_whole_chain_at_once(store: SQLiteStore) -> None:
    import time

    root = store.submit(SPEC, by="t")
    chain = [root.id]
    for _ in range(4):
        chain.append(store.submit(SPEC._replace(after=(chain[-1],)), by="t").id)
    store.cancel(root.id, by="u")
    store.promote_due(time.time(), "s")
    assert all(store.get(i).reason is Reason.DEPENDENCY for i in chain[1:])


def test_unique_key_returns_the_live_task(store: SQLiteStore, other: SQLiteStore) -> None:
    first = store.submit(SPEC._replace(unique="nightly"), by="t")
    assert other.submit(SPEC._replace(unique="nightly"), by="t").id == first.id
    assert store.submit(SPEC._replace(unique="other"), by="t").id != first.id
    _succeed(store, first.id)
    again = store.submit(SPEC._replace(unique="nightly"), by="t")
    assert again.id != first.id and again.unique == "nightly"


def test_a_paused_queue_is_not_claimed(store: SQLiteStore) -> None:
    held = store.submit(SPEC._replace(queue="slow"), by="t")
    free = store.submit(SPEC, by="t")
    store.set_queue_paused("slow", True)
    assert [c.task_id for c in store.claim("s1", 5)] == [free.id]
    listed = {q["name"]: q for q in store.queues()}
    assert listed["slow"]["paused"] is True and listed["slow"]["tasks"]["queued"] == 1
    assert listed["default"]["tasks"]["running"] == 1
    store.set_queue_paused("slow", False)
    assert [c.task_id for c in store.claim("s1", 5)] == [held.id]


def test_unique_keys_are_each_tenants_own(store: SQLiteStore) -> None:
    store.add_tenant("a")
    store.add_tenant("b")
    first = store.submit(SPEC._replace(unique="nightly", tenant="a"), by="t")
    other = store.submit(SPEC._replace(unique="nightly", tenant="b"), by="t")
    assert other.id != first.id and other.tenant == "b"
    assert store.submit(SPEC._replace(unique="nightly", tenant="a"), by="t").id == first.id
