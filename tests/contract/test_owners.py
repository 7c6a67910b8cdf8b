"""Who owns the running tasks: read by clients to judge whether those servers live."""

from __future__ import annotations

from taskyard.lifecycle import Reason, Status
from taskyard.liveness import silent_owners
from taskyard.model import TaskSpec
from taskyard.store.base import Instance, Outcome, Owner
from taskyard.store.sqlserver import SqlServerStore

SPEC = TaskSpec(argv=("sleep", "60"), cwd="/tmp")


def test_active_owners_lists_each_server_with_its_running_and_paused_tasks(
        store: SqlServerStore) -> None:
    assert store.active_owners() == []
    store.register(Instance("s1", "h1", "b", 11, 2, 1.0, 5.0, None, None))
    store.register(Instance("s2", "h2", "b", 22, 2, 1.0, 6.0, None, None))
    ids = [store.submit(SPEC, by="t").id for _ in range(5)]
    claimed = {c.task_id: c for c in store.claim("s1", 2) + store.claim("s2", 2)}
    assert sorted(claimed) == ids[:4]  # the fifth stays queued: nobody owns it
    store.set_paused("s1", ids[1], claimed[ids[1]].epoch, True, "t")
    store.finish("s2", [Outcome(ids[3], claimed[ids[3]].epoch, Status.FAILED, Reason.EXIT,
                                exit_code=1)])
    assert store.active_owners() == [Owner("s1", (ids[0], ids[1]), "h1", "b", 11, 5.0, None),
                                     Owner("s2", (ids[2],), "h2", "b", 22, 6.0, None)]
    store.fence("s2", 7.0)  # fenced, not yet taken over: still its tasks, stopped
    assert store.active_owners()[1] == Owner("s2", (ids[2],), "h2", "b", 22, 6.0, 7.0)


def test_an_owner_the_store_no_longer_knows_is_listed_without_its_row(
        store: SqlServerStore) -> None:
    task = store.submit(SPEC, by="t").id
    store.claim("ghost", 1)
    assert store.active_owners() == [Owner("ghost", (task,), None, None, None, None, None)]


def test_silent_owners_are_those_past_the_lease_stopped_or_unknown(
        store: SqlServerStore) -> None:
    now = 1000.0
    for name, heard in (("live", now - 5), ("silent", now - 40), ("fenced", now)):
        store.register(Instance(name, "elsewhere", "b", 1, 2, 1.0, heard, None, None))
    store.fence("fenced", now)
    tasks = {}
    for name in ("live", "silent", "fenced", "ghost"):
        tasks[name] = store.submit(SPEC, by="t").id
        store.claim(name, 1)
    silent = silent_owners(store, lease=10.0, now=now)
    assert [(s.owner.id, s.tasks, s.heard, s.pid_gone) for s in silent] == [
        ("fenced", (tasks["fenced"],), 0.0, False),
        ("ghost", (tasks["ghost"],), None, False),
        ("silent", (tasks["silent"],), 40.0, False)]
    # only the tasks asked about count
    assert silent_owners(store, 10.0, {tasks["live"]}, now) == []
    assert [s.owner.id for s in silent_owners(store, 10.0, {tasks["silent"]}, now)] == ["silent"]
