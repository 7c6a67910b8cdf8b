"""The stored facts of a waiting task, on every store."""

from __future__ import annotations

import time

from taskyard.model import TaskSpec
from taskyard.store.base import Instance
from taskyard.store.sqlserver import SqlServerStore


def test_the_facts_of_a_waiting_task(store: SqlServerStore) -> None:
    store.register(Instance("s1", "h", "b", 1, 2, time.time(), time.time(), None, None))
    holder = store.submit(TaskSpec(argv=("true",), queue="mail", mutex="db"), by="t")
    (claim,) = store.claim("s1", 1)
    assert claim.task_id == holder.id
    dep = store.submit(TaskSpec(argv=("true",)), by="t")
    store.set_queue_paused("mail", True)
    store.set_queue_parallel("mail", 1)
    ahead = store.submit(TaskSpec(argv=("true",), queue="mail"), by="t")
    task = store.submit(TaskSpec(argv=("true",), queue="mail", mutex="db"), by="t")
    w = store.waiting(task.id)
    assert (w.queue_paused, w.queue_parallel, w.queue_active) == (True, 1, [holder.id])
    assert w.queue_ahead == 1 and w.mutex_holder == holder.id and w.running == 1
    assert w.tenant_enabled and [s[0] for s in w.servers] == ["s1"]
    assert store.waiting(ahead.id).queue_ahead == 0
    later = store.submit(TaskSpec(argv=("true",), after=(dep.id,)), by="t")
    assert store.waiting(later.id).after == [(dep.id, "queued")]
