"""Bulk submit in every store: many tasks in one transaction per chunk, each as submit
would have made it, all checked before any is written."""

from __future__ import annotations

import time

import pytest

from taskyard import ops
from taskyard.errors import InvalidInput, NotFound
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store.sqlserver import SqlServerStore


def _spec(n: int, **fields: object) -> TaskSpec:
    return TaskSpec(argv=("echo", str(n)), name=f"t{n}", meta={"n": n}, **fields)  # type: ignore[arg-type]


def test_submit_many_makes_the_tasks_submit_makes(store: SqlServerStore,
                                                  other: SqlServerStore) -> None:
    one = store.submit(_spec(0, env={"A": "1"}, priority=3, output_tail=0), by="alice")
    many = ops.submit_many(store, [_spec(n, env={"A": "1"}, priority=3, output_tail=0)
                                   for n in range(1, 1201)], by="alice", chunk=500)
    assert [t.id for t in many] == list(range(one.id + 1, one.id + 1201))
    assert [t.name for t in many] == [f"t{n}" for n in range(1, 1201)]
    fields = ("status", "argv", "env", "queue", "priority", "tenant", "output_tail", "limits")
    for task in (many[0], many[-1]):
        assert other.get(task.id) == task
        assert [getattr(task, f) for f in fields[1:]][1:] == [getattr(one, f) for f in
                                                              fields[2:]]
        assert task.status is Status.QUEUED
        assert [(e.to_status, e.by) for e in other.events(task.id)] == [(Status.QUEUED,
                                                                         "alice")]
    claimed = store.claim("s1", 3)
    assert [c.task_id for c in claimed] == [one.id, many[0].id, many[1].id]


def test_a_bad_spec_writes_nothing_and_names_its_index(store: SqlServerStore) -> None:
    specs = [_spec(n) for n in range(10)]
    specs[7] = specs[7]._replace(queue="")
    with pytest.raises(InvalidInput, match=r"^spec 7: .*queue") as caught:
        ops.submit_many(store, specs, by="t", chunk=3)
    assert caught.value.field == "7.queue"
    assert store.list_tasks() == []


def test_a_store_refusal_in_the_first_chunk_writes_nothing(store: SqlServerStore) -> None:
    first = store.submit(_spec(0), by="t")
    specs = [_spec(n, after=(first.id,)) for n in range(5)]
    specs[3] = specs[3]._replace(after=(first.id, first.id + 100))
    with pytest.raises(NotFound, match="spec 3: after: no task") as caught:
        ops.submit_many(store, specs, by="t")
    assert caught.value.field == "3.after"
    specs = [_spec(n) for n in range(5)]
    specs[4] = specs[4]._replace(tenant="nobody")
    with pytest.raises(NotFound, match="spec 4: no tenant 'nobody'"):
        ops.submit_many(store, specs, by="t")
    assert [t.id for t in store.list_tasks()] == [first.id]


def test_waiting_unique_and_dependencies(store: SqlServerStore) -> None:
    first = store.submit(_spec(0), by="t")
    later = time.time() + 3600
    many = ops.submit_many(store, [
        _spec(1, after=(first.id,)), _spec(2, run_at=later), _spec(3, unique="k"),
        _spec(4, unique="k"), _spec(5)], by="t")
    assert [t.status for t in many] == [Status.SCHEDULED, Status.SCHEDULED, Status.QUEUED,
                                        Status.QUEUED, Status.QUEUED]
    assert many[2].id == many[3].id  # the second answers the first, as submit does
    assert many[0].id < many[1].id < many[2].id < many[4].id
    with store._read_tx() as cur:
        cur.execute("SELECT task_id, after_id FROM deps ORDER BY task_id")
        assert [tuple(r) for r in cur.fetchall()] == [(many[0].id, first.id)]


def test_empty(store: SqlServerStore) -> None:
    assert ops.submit_many(store, [], by="t") == []


@pytest.mark.parametrize("bad", [{"after": (99999,)}, {"tenant": "nosuch"}])
def test_a_later_chunk_naming_what_does_not_exist_writes_nothing(store: SqlServerStore,
                                                                 bad: dict[str, object]) -> None:
    """All or none per call, however many chunks: the tenants and --after tasks of every
    spec are checked before the first chunk is written."""
    specs = [_spec(n) for n in range(5)] + [_spec(5, **bad)]
    with pytest.raises(NotFound) as caught:
        ops.submit_many(store, specs, chunk=2)
    assert caught.value.field is not None and caught.value.field.startswith("5.")
    assert store.list_tasks() == []
