"""``taskyard stats`` on every store: the numbers of a 100,000-task history (filled by
set-based SQL, see ``tests/statsfill.py``) against the same numbers worked out plainly;
and the memory samples a server writes, fenced by owner and attempt."""

from __future__ import annotations

import math

from taskyard import stats
from taskyard.model import TaskSpec
from taskyard.store.sqlserver import SqlServerStore
from tests import statsfill
from tests.statsfill import NOW, Expected

N = 100_000


def _nearest_rank(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1] if ordered else None


def _check(store: SqlServerStore, got: stats.Group, want: Expected) -> None:
    assert {k: v for k, v in got.tasks.items() if v} == want.tasks
    assert (got.submitted, got.started) == (want.submitted, want.started)
    assert got.finished == want.finished
    assert got.failures == want.failures
    for timing, values in ((got.wait, want.waits), (got.run, want.runs)):
        assert timing.n == len(values)
        assert timing.p50 == _nearest_rank(values, 0.5)
        assert timing.p95 == _nearest_rank(values, 0.95)
        assert timing.max == (max(values) if values else None)
    sampled = [(kib, x) for x, kib in want.rss if kib is not None]
    assert got.memory.tasks == len(want.rss)
    assert got.memory.sampled == len(sampled)
    assert got.memory.total_kib == sum(kib for kib, _ in sampled)
    if not sampled:
        assert got.memory.max_kib is None and got.memory.max_task is None
        return
    assert got.memory.max_kib == max(sampled)[0]
    assert got.memory.max_task is not None
    top = store.get(got.memory.max_task)  # ids follow x in an empty store; check anyway
    assert statsfill.rss_of(round((top.created_at - statsfill.BASE) * 16)) == got.memory.max_kib


def _check_window(store: SqlServerStore, *, queue: str | None = None,
                  tenant: str | None = None) -> stats.Stats:
    got = stats.collect(store, 3600, queue=queue, tenant=tenant, now=NOW)
    total, queues, tenants, series = statsfill.expected(N, NOW - 3600, NOW, queue=queue,
                                                        tenant=tenant)
    assert got.per_minute == series
    _check(store, got.total, total)
    assert sorted(got.queues) == sorted(queues)
    assert sorted(got.tenants) == sorted(tenants)
    for name, want in queues.items():
        _check(store, got.queues[name], want)
    for name, want in tenants.items():
        _check(store, got.tenants[name], want)
    return got


def test_stats_of_a_hundred_thousand_tasks(store: SqlServerStore) -> None:
    statsfill.fill(store, N)
    got = _check_window(store)
    assert got.total.submitted > 50_000 and got.total.started > 30_000  # a busy window
    assert got.total.failures and got.total.memory.sampled > 1000
    assert len(got.per_minute["started"]) == 60
    _check_window(store, queue="emails")
    _check_window(store, tenant="acme")
    _check_window(store, queue="reports", tenant="acme")
    empty = stats.collect(store, 3600, queue="nothing-here", now=NOW)
    assert empty.total.submitted == 0 and empty.queues == {} and empty.total.wait.p50 is None


def test_a_window_older_than_every_task_is_empty_but_the_counts_are_now(
        store: SqlServerStore) -> None:
    statsfill.fill(store, 2000)
    got = stats.collect(store, 60, now=statsfill.BASE)  # the minute before the first task
    assert got.total.submitted == got.total.started == 0
    assert sum(got.per_minute["finished"]) == 0
    assert sum(got.total.tasks.values()) == 2000


def test_memory_samples_are_fenced_by_owner_and_open_attempt(store: SqlServerStore) -> None:
    task = store.submit(TaskSpec(argv=("sleep", "60"), queue="mem"), by="t")
    claims = store.claim("server-a", 1)
    assert [c.task_id for c in claims] == [task.id]
    store.record_rss("server-b", [(task.id, 1, 999)], NOW)  # not its owner: ignored
    rows = store.stats_rows(0, NOW, queue="mem").running
    assert rows == [(task.id, "mem", "default", None, None, "command")]
    store.record_rss("server-a", [(task.id, 1, 2048)], NOW)
    got = stats.collect(store, 60, queue="mem")
    assert got.total.memory == stats.Memory(1, 1, 2048, 2048, task.id)
    assert got.running == [(task.id, "mem", "default", 2048, NOW, "command")]
    store.record_rss("server-a", [(task.id, 2, 4096)], NOW)  # another attempt: ignored
    assert stats.collect(store, 60, queue="mem").total.memory.max_kib == 2048


def test_a_resume_is_not_a_start(store: SqlServerStore) -> None:
    task = store.submit(TaskSpec(argv=("sleep", "60"), queue="pr"), by="t")
    store.claim("server-a", 1)
    store.set_paused("server-a", task.id, 1, True, "t")
    store.set_paused("server-a", task.id, 1, False, "t")
    got = stats.collect(store, 3600, queue="pr")
    assert got.total.started == 1 and got.total.wait.n == 1
    assert got.total.tasks["running"] == 1 and got.total.submitted == 1


def test_submit_times_a_little_out_of_their_ids_order_are_counted(store: SqlServerStore) -> None:
    """Tasks are found by id (their ids follow their submit times, give or take a clock
    read before the INSERT and the clocks of several hosts): a task up to SLACK out of
    order is still in its window, and a binary search lands right whatever the window."""
    from taskyard.store.stats import SLACK

    ids = [store.submit(TaskSpec(argv=("true",)), by="t").id for _ in range(60)]
    base = 1_600_000_000.0
    times = {task_id: base + 10 * i for i, task_id in enumerate(ids)}
    times[ids[45]] = base + 10 * 45 - (SLACK - 5)  # an earlier clock, just within SLACK
    times[ids[20]] = base + 10 * 20 + (SLACK - 5)  # a later one
    with store._tx() as cur:
        cur.executemany("UPDATE tasks SET created_at = ? WHERE id = ?",
                        [(at, task_id) for task_id, at in times.items()])
    for since in [base + s for s in range(-20, 600 + int(SLACK), 35)]:
        until = since + 120
        want = sum(since <= at < until for at in times.values())
        got = stats.collect(store, 120, now=until)
        assert got.total.submitted == want, since - base


def test_a_tracked_task_is_a_start_and_is_marked_tracked(store: SqlServerStore) -> None:
    from taskyard import tracked
    from taskyard.stats import collect

    task = tracked.track(store, name="outside", queue="mem", by="t")
    got = collect(store, 3600.0, queue="mem")
    assert got.total.started == 1
    assert got.running == [(task.id, "mem", "default", None, None, "tracked")]
    assert got.to_json()["running"][0]["kind"] == "tracked"
