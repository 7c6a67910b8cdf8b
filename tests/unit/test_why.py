"""'Why is it not running?': each stored fact worded as a reason."""

from __future__ import annotations

from typing import Any

from taskyard.lifecycle import Status
from taskyard.model import Progress, Task
from taskyard.store.browse import Waiting
from taskyard.why import explain

NOW, LEASE = 1_800_000_000.0, 10.0
ALIVE = [("s1", "host-a", NOW - 1, 2)]


def _task(status: Status = Status.QUEUED, **changes: Any) -> Task:
    fields: dict[str, Any] = dict(
        id=7, name=None, queue="mail", status=status, reason=None, exit_code=None,
        signal=None, error=None, argv=("true",), env={}, cwd=None, meta={}, stdin_open=False,
        timeout=None, priority=0, run_at=None, retries=0, retried=0, unique=None,
        mutex=None, tenant="acme", schedule=None, fire_at=None, function=None, kwargs=None,
        result=None, config={}, steps=None, progress=Progress(), attempt=0, pid=None,
        created_at=NOW - 5, started_at=None, finished_at=None)
    fields.update(changes)
    return Task(**fields)


def _waiting(task: Task, **changes: Any) -> Waiting:
    fields: dict[str, Any] = dict(
        task=task, after=[], queue_paused=False, queue_parallel=None, queue_active=[],
        queue_ahead=0, tenant_enabled=True, tenant_parallel=None, tenant_active=0,
        mutex_holder=None, servers=ALIVE, running=0)
    fields.update(changes)
    return Waiting(**fields)


def _codes(w: Waiting) -> list[str]:
    return [r.code for r in explain(w, NOW, LEASE)]


def test_each_fact_is_a_reason() -> None:
    q = _task()
    assert _codes(_waiting(q, queue_paused=True)) == ["queue_paused"]
    limit = explain(_waiting(q, queue_parallel=2, queue_active=[3, 4]), NOW, LEASE)
    assert [r.code for r in limit] == ["queue_limit"] and "task 3, 4" in limit[0].text
    assert _codes(_waiting(q, queue_parallel=1, queue_ahead=3)) == ["queue_order"]
    assert _codes(_waiting(q, tenant_enabled=False)) == ["tenant_disabled"]
    assert _codes(_waiting(q, tenant_parallel=1, tenant_active=1)) == ["tenant_limit"]
    mutex = explain(_waiting(_task(mutex="db"), mutex_holder=12), NOW, LEASE)
    assert mutex[0].code == "mutex" and "task 12" in mutex[0].text
    assert _codes(_waiting(q, running=2)) == ["slots"]
    assert _codes(_waiting(q, queue_ahead=5)) == ["ahead"]
    assert _codes(_waiting(q)) == ["next"]


def test_several_reasons_at_once() -> None:
    w = _waiting(_task(mutex="db"), queue_paused=True, tenant_enabled=False, mutex_holder=3)
    assert _codes(w) == ["queue_paused", "tenant_disabled", "mutex"]


def test_servers_missing_or_silent() -> None:
    q = _task()
    assert _codes(_waiting(q, servers=[])) == ["no_server"]
    silent = explain(_waiting(q, servers=[("s9", "h", NOW - 40, 2)]), NOW, LEASE)
    assert silent[0].code == "no_server" and "40 s ago" in silent[0].text


def test_scheduled_tasks() -> None:
    later = _task(Status.SCHEDULED, run_at=NOW + 3725)
    (reason,) = explain(_waiting(later), NOW, LEASE)
    assert reason.code == "start_time"
    assert reason.text == "it starts at 2027-01-15 09:02:05 UTC (in 1 h 02 min)"
    deps = explain(_waiting(_task(Status.SCHEDULED), after=[(3, "running")]), NOW, LEASE)
    assert deps[0].code == "dependencies" and "task 3 (running)" in deps[0].text
    assert _codes(_waiting(_task(Status.SCHEDULED))) == ["due"]


def test_a_long_queue_ahead_is_over_the_cap() -> None:
    text = explain(_waiting(_task(), queue_ahead=1001), NOW, LEASE)[0].text
    assert text.startswith("over 1,000 task(s)")


def test_running_and_ended_tasks_have_no_reasons() -> None:
    for status in (Status.RUNNING, Status.PAUSED, Status.SUCCEEDED, Status.FAILED):
        assert explain(_waiting(_task(status)), NOW, LEASE) == []
