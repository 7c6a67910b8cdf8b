"""Resource limits as every store keeps them: a task's own, its queue's, and the
merge a claim hands the server (the task's own kind by kind over its queue's)."""

from __future__ import annotations

from taskyard.limits import NONE, Limits
from taskyard.model import TaskSpec
from taskyard.store.sqlserver import SqlServerStore

SPEC = TaskSpec(argv=("true",))


def test_a_task_keeps_its_limits(store: SqlServerStore) -> None:
    limited = store.submit(SPEC._replace(limits=Limits(memory=1 << 29, cpu=60)), by="t")
    assert store.get(limited.id).limits == Limits(memory=1 << 29, cpu=60)
    assert store.get(store.submit(SPEC, by="t").id).limits == NONE
    assert store.get(limited.id).to_json()["limits"] == {"memory": 1 << 29, "cpu": 60}


def test_a_claim_merges_the_task_limits_over_its_queue_limits(store: SqlServerStore) -> None:
    store.set_queue_limits("small", Limits(memory=1 << 26, cpu=5, files=32))
    assert store.queue_limits("small") == Limits(memory=1 << 26, cpu=5, files=32)
    own = store.submit(SPEC._replace(queue="small", limits=Limits(memory=1 << 30, procs=9)),
                       by="t")
    plain = store.submit(SPEC._replace(queue="small"), by="t")
    free = store.submit(SPEC, by="t")
    claims = {c.task_id: c.limits for c in store.claim("s1", 10)}
    assert claims == {own.id: Limits(memory=1 << 30, cpu=5, files=32, procs=9),
                      plain.id: Limits(memory=1 << 26, cpu=5, files=32), free.id: None}
    reread = {c.task_id: c.limits for c in store.open_claims("s1")}
    assert reread == claims
    queues = {q["name"]: q for q in store.queues()}
    assert queues["small"]["limits"] == {"memory": 1 << 26, "cpu": 5, "files": 32}
    assert queues["small"]["parallel"] is None


def test_queue_limits_do_not_limit_its_parallelism(store: SqlServerStore) -> None:
    store.set_queue_limits("q", Limits(cpu=1))
    for _ in range(3):
        store.submit(SPEC._replace(queue="q"), by="t")
    assert len(store.claim("s1", 10)) == 3
    store.set_queue_limits("q", NONE)
    assert store.queue_limits("q") == NONE
