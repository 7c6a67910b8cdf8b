"""Cron schedules in the store: exactly one task per (schedule, tick), with a fake clock
(``fire_schedules`` takes the time)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from taskyard.errors import NotFound, TransitionError
from taskyard.lifecycle import Status
from taskyard.model import Schedule, TaskSpec
from taskyard.store.sqlite import SQLiteStore

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC).timestamp()  # 30 s past a minute
SPEC = TaskSpec(argv=("echo", "tick"), queue="cron", meta={"from": "cron"})


def _sched(name: str = "s", expr: str = "*/5 * * * *", catch_up: str = "one",
           max_lag: float | None = None, created: float = T0, tenant: str = "default"
           ) -> Schedule:
    return Schedule(name=name, expr=expr, tz="UTC", tenant=tenant, catch_up=catch_up,
                    max_lag=max_lag, spec=SPEC._replace(tenant=tenant), paused=False,
                    last_tick=0.0, next_at=None, fired=0, created_at=created)


def _ticks(store: SQLiteStore, name: str = "s") -> list[float]:
    return sorted(t.fire_at for t in store.list_tasks() if t.schedule == name
                  and t.fire_at is not None)


def test_add_show_list_pause_remove(store: SQLiteStore) -> None:
    added = store.add_schedule(_sched())
    assert added.next_at == T0 + 270  # 12:05:00
    assert added.spec.argv == ("echo", "tick") and added.spec.meta == {"from": "cron"}
    with pytest.raises(TransitionError):
        store.add_schedule(_sched())
    with pytest.raises(NotFound):
        store.add_schedule(_sched("t", tenant="nobody"))
    assert [s.name for s in store.schedules()] == ["s"]
    assert store.set_schedule_paused("s", True).paused
    assert store.fire_schedules(T0 + 3600, "srv") == (0, None)  # paused: nothing
    assert not store.set_schedule_paused("s", False).paused
    store.remove_schedule("s")
    with pytest.raises(NotFound):
        store.get_schedule("s")


def test_each_tick_fires_once_stepping_a_fake_clock(store: SQLiteStore) -> None:
    store.add_schedule(_sched())
    now = T0
    while now < T0 + 3600:
        now += 7  # a server polling every 7 s
        store.fire_schedules(now, "srv")
    expected = [T0 - 30 + 300 * k for k in range(1, 13)]
    assert _ticks(store) == expected
    assert store.get_schedule("s").fired == 12
    task = next(t for t in store.list_tasks() if t.schedule == "s")
    assert (task.status, task.queue, task.argv) == (Status.QUEUED, "cron", ("echo", "tick"))


def test_two_servers_fire_each_tick_once(store: SQLiteStore, other: SQLiteStore) -> None:
    store.add_schedule(_sched(catch_up="all"))
    errors: list[BaseException] = []

    def server(s: SQLiteStore) -> None:
        try:
            for step in range(1, 121):
                s.fire_schedules(T0 + 30 * step, "srv")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=server, args=(s,)) for s in (store, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ticks = _ticks(store)
    assert ticks == sorted(set(ticks)) and len(ticks) == 12


@pytest.mark.parametrize(("catch_up", "max_lag", "fired"), [
    ("none", None, 0), ("one", None, 1), ("one", 60.0, 0), ("all", None, 36),
    ("all", 3600.0 + 1, 12)])
def test_catch_up_after_an_outage(store: SQLiteStore, catch_up: str, max_lag: float | None,
                                  fired: int) -> None:
    store.add_schedule(_sched(catch_up=catch_up, max_lag=max_lag))
    now = T0 + 3 * 3600 + 100  # three hours without a server; the last tick was 130 s ago
    assert store.fire_schedules(now, "srv")[0] == fired
    assert store.fire_schedules(now + 1, "srv")[0] == 0  # accounted for: never again
    assert store.get_schedule("s").next_at == T0 - 30 + 300 * 37


def test_a_disabled_tenants_schedule_waits(store: SQLiteStore) -> None:
    store.add_tenant("acme", enabled=False)
    store.add_schedule(_sched(tenant="acme"))
    assert store.fire_schedules(T0 + 600, "srv") == (0, None)
    store.update_tenant("acme", enabled=True)
    assert store.fire_schedules(T0 + 600, "srv")[0] == 1
    assert all(t.tenant == "acme" for t in store.list_tasks())


def test_run_now_is_outside_the_ticks(store: SQLiteStore) -> None:
    store.add_schedule(_sched())
    task = store.run_schedule("s", by="alice")
    assert (task.schedule, task.fire_at, task.status) == ("s", None, Status.QUEUED)
    store.run_schedule("s", by="alice")
    assert store.fire_schedules(T0 + 300, "srv")[0] == 1
    assert len([t for t in store.list_tasks() if t.schedule == "s"]) == 3
