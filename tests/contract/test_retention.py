"""Retention in every store: candidates by age and by count per queue, what is never a
candidate, and a purge that takes everything of a task and re-checks in its own
transaction."""

from __future__ import annotations

import time

import pytest

from taskyard.errors import NotFound
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.retention import Pruner, Rule, rules
from taskyard.store.base import Outcome, OutputWrite
from taskyard.store.sqlserver import SqlServerStore


def _finished(store: SqlServerStore, n: int, queue: str = "default",
              **spec: object) -> list[int]:
    ids = [store.submit(TaskSpec(argv=("true",), queue=queue, **spec), by="t").id  # type: ignore[arg-type]
           for _ in range(n)]
    for claim in store.claim("s1", n):
        store.append_output("s1", [OutputWrite(claim.task_id, claim.epoch, "stdout", 0,
                                               b"out", 3, 0, 100)])
        store.finish("s1", [Outcome(claim.task_id, claim.epoch, Status.SUCCEEDED, None,
                                    exit_code=0)])
    return ids


def test_candidates_by_count_and_age_per_queue(store: SqlServerStore) -> None:
    old = _finished(store, 5)
    other = _finished(store, 3, queue="other")
    assert store.prune_candidates("default", beyond=2) == old[:3]
    assert store.prune_candidates("default", beyond=5) == []
    assert store.prune_candidates("default", before=time.time() + 1) == old
    assert store.prune_candidates("default", before=time.time() - 3600) == []
    assert store.prune_candidates("other", beyond=0, statuses=["failed"]) == []
    assert store.prune_candidates("other", beyond=0, limit=2) == other[:2]
    assert set(store.finished_queues()) == {"default", "other"}


def test_kept_waited_for_and_unfinished_tasks_are_never_candidates(
        store: SqlServerStore) -> None:
    (kept,) = _finished(store, 1, keep=True)
    (waited,) = _finished(store, 1)
    store.submit(TaskSpec(argv=("true",), after=(waited,), run_at=time.time() + 3600), by="t")
    queued = store.submit(TaskSpec(argv=("true",)), by="t")
    found = store.prune_candidates("default", before=time.time() + 1)
    assert kept not in found and waited not in found and queued.id not in found
    assert store.purge([kept, waited, queued.id]) == []


def test_a_purge_takes_everything_of_the_task(store: SqlServerStore) -> None:
    ids = _finished(store, 3)
    store.set_queue_retention("default", retain_count=1)
    assert store.queue_retention() == {"default": (None, 1)}
    pruner = Pruner(store)
    assert pruner.run(rules(store, Rule()), time.time())
    assert sorted(p.id for p in pruner.removed) == ids[:2]
    assert [t.id for t in store.list_tasks()] == ids[2:]
    for gone in ids[:2]:
        with pytest.raises(NotFound):
            store.get(gone)
    assert not {row[1] for row in store.transitions_since(0)} & set(ids[:2]), "events went too"
    assert store.read_output(ids[2], "stdout", 0, None).data == b"out"
    store.set_queue_retention("default", retain_count=None)
    assert store.queue_retention() == {}
