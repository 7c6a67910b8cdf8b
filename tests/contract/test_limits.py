"""Queue and tenant parallel limits, strict queues, mutexes: decided in the claim, so
they hold for every server sharing the store."""

from __future__ import annotations

import threading

import pytest

from taskyard.errors import NotFound, TransitionError
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store.base import Outcome
from taskyard.store.sqlite import SQLiteStore

SPEC = TaskSpec(argv=("true",))


def _ids(claims: list) -> list[int]:  # type: ignore[type-arg]
    return [c.task_id for c in claims]


def _finish(store: SQLiteStore, owner: str, task_id: int) -> None:
    epoch = store.get(task_id).attempt
    assert store.finish(owner, [Outcome(task_id, epoch, Status.SUCCEEDED)]) == []


def test_queue_parallel_limit(store: SQLiteStore) -> None:
    store.set_queue_parallel("io", 2)
    io = [store.submit(SPEC._replace(queue="io"), by="t").id for _ in range(4)]
    free = [store.submit(SPEC, by="t").id for _ in range(2)]
    assert _ids(store.claim("s1", 10)) == io[:2] + free
    assert store.claim("s1", 10) == []
    _finish(store, "s1", io[0])
    assert _ids(store.claim("s1", 10)) == [io[2]]
    store.set_queue_parallel("io", None)
    assert _ids(store.claim("s1", 10)) == [io[3]]
    listed = {q["name"]: q for q in store.queues()}
    assert listed["io"]["parallel"] is None


def test_parallel_one_runs_in_order_behind_a_long_backlog(store: SQLiteStore) -> None:
    store.set_queue_parallel("serial", 1)
    serial = [store.submit(SPEC._replace(queue="serial"), by="t").id for _ in range(200)]
    other = store.submit(SPEC, by="t").id  # behind the backlog, in another queue
    assert _ids(store.claim("s1", 2)) == [serial[0], other]
    done = []
    for expected in serial[1:6]:
        _finish(store, "s1", done[-1] if done else serial[0])
        got = _ids(store.claim("s1", 5))
        assert got == [expected]
        done.append(expected)


def test_priority_within_a_strict_queue(store: SQLiteStore) -> None:
    store.set_queue_parallel("serial", 1)
    low = store.submit(SPEC._replace(queue="serial"), by="t").id
    high = store.submit(SPEC._replace(queue="serial", priority=5), by="t").id
    assert _ids(store.claim("s1", 5)) == [high]
    _finish(store, "s1", high)
    assert _ids(store.claim("s1", 5)) == [low]


def test_mutex_one_at_a_time_across_queues(store: SQLiteStore) -> None:
    a = store.submit(SPEC._replace(queue="a", mutex="db"), by="t").id
    b = store.submit(SPEC._replace(queue="b", mutex="db"), by="t").id
    c = store.submit(SPEC._replace(queue="b", mutex="other"), by="t").id
    assert _ids(store.claim("s1", 5)) == [a, c]
    assert store.get(b).status is Status.QUEUED and store.get(b).mutex == "db"
    _finish(store, "s1", a)
    assert _ids(store.claim("s1", 5)) == [b]


def test_a_strict_queue_head_waiting_for_its_mutex_holds_the_queue(store: SQLiteStore) -> None:
    holder = store.submit(SPEC._replace(mutex="m"), by="t").id
    assert _ids(store.claim("s1", 1)) == [holder]
    store.set_queue_parallel("serial", 1)
    head = store.submit(SPEC._replace(queue="serial", mutex="m"), by="t").id
    store.submit(SPEC._replace(queue="serial"), by="t")
    free = store.submit(SPEC, by="t").id
    assert _ids(store.claim("s1", 5)) == [free]  # nobody overtakes the strict head
    _finish(store, "s1", holder)
    assert _ids(store.claim("s1", 5)) == [head]


def test_disabled_tenant_waits_and_limits_apply(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        store.submit(SPEC._replace(tenant="acme"), by="t")
    store.add_tenant("acme", enabled=False)
    with pytest.raises(TransitionError):
        store.add_tenant("acme")
    waiting = [store.submit(SPEC._replace(tenant="acme"), by="t").id for _ in range(3)]
    free = store.submit(SPEC, by="t").id
    assert _ids(store.claim("s1", 5)) == [free]
    store.update_tenant("acme", enabled=True, parallel=2, run_as="nobody")
    claims = store.claim("s1", 5)
    assert _ids(claims) == waiting[:2] and {c.run_as for c in claims} == {"nobody"}
    listed = {t["name"]: t for t in store.tenants()}
    assert listed["acme"]["tasks"]["running"] == 2 and listed["acme"]["parallel"] == 2
    assert listed["default"]["enabled"] is True
    store.update_tenant("acme", enabled=False)
    _finish(store, "s1", waiting[0])
    assert store.claim("s1", 5) == []  # disabled: its queued task waits, untouched
    assert store.get(waiting[2]).status is Status.QUEUED
    with pytest.raises(NotFound):
        store.update_tenant("nobody-here", enabled=True)


def test_concurrent_claims_never_exceed_a_limit(store: SQLiteStore, other: SQLiteStore) -> None:
    """Two servers claiming at once from a parallel-2 queue and one mutex."""
    store.set_queue_parallel("q", 2)
    for i in range(40):
        store.submit(SPEC._replace(queue="q", mutex="m" if i % 2 else None), by="t")
    errors: list[BaseException] = []
    peak = {"q": 0, "m": 0}
    lock = threading.Lock()

    def server(s: SQLiteStore, owner: str) -> None:
        try:
            for _ in range(60):
                claims = s.claim(owner, 2)
                with lock:
                    running = s.list_tasks(status=[Status.RUNNING])
                    peak["q"] = max(peak["q"], len(running))
                    peak["m"] = max(peak["m"], sum(t.mutex == "m" for t in running))
                for c in claims:
                    s.finish(owner, [Outcome(c.task_id, c.epoch, Status.SUCCEEDED)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=server, args=(s, o)) for s, o in
               ((store, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert peak["q"] <= 2 and peak["m"] <= 1
    assert all(t.status is Status.SUCCEEDED for t in store.list_tasks())
