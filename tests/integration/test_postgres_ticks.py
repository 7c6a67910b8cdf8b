"""The server's tick on PostgreSQL (store/pgtick.py): two messages per tick, and what
must hold all the same (a real PostgreSQL, a real second session)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psycopg
import pytest

from taskyard.errors import StoreUnavailable
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.store.base import Batch, Instance, Outcome
from taskyard.store.postgres import _CLAIM_LOCK, PostgresStore


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg_dsn, hold_limit=0.5)
    now = time.time()
    opened.register(Instance("srv", "h", "b", os.getpid(), 2, now, now, None, None))
    try:
        yield opened
    finally:
        opened.close()


def _submit(store: PostgresStore, n: int, **spec: object) -> list[int]:
    return [store.submit(TaskSpec(argv=("true",), **spec), by="t").id  # type: ignore[arg-type]
            for _ in range(n)]


def test_a_tick_ends_and_claims_with_events_for_every_transition(store: PostgresStore) -> None:
    first, second = _submit(store, 2)
    (claim,) = store.apply("srv", Batch(claim=1)).claims
    assert claim.task_id == first
    done = Outcome(claim.task_id, claim.epoch, Status.SUCCEEDED, exit_code=0)
    result = store.apply("srv", Batch(outcomes=[done], claim=1))
    assert [c.task_id for c in result.claims] == [second] and result.stale == []
    assert store.get(first).status is Status.SUCCEEDED
    assert store.get(second).status is Status.RUNNING
    attempt = store.attempts(first)[0]
    assert attempt.status is Status.SUCCEEDED and attempt.finished_at is not None
    assert [(e.from_status, e.to_status) for e in store.events(first)] == [
        (None, Status.QUEUED), (Status.QUEUED, Status.RUNNING),
        (Status.RUNNING, Status.SUCCEEDED)]
    # the same outcome again is fenced off: nothing changes, the task id comes back stale
    again = store.apply("srv", Batch(outcomes=[done]))
    assert again.stale == [first] and len(store.events(first)) == 3


def test_claims_without_limits_do_not_wait_for_the_claim_lock(store: PostgresStore,
                                                              pg_dsn: str) -> None:
    """Row locks (SKIP LOCKED) keep two servers from one task; the claim lock is for
    counted limits only, so a server claims while another holds it."""
    _submit(store, 2)
    with psycopg.connect(pg_dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (_CLAIM_LOCK,))
        started = time.monotonic()
        claims = store.apply("srv", Batch(claim=1)).claims
        assert len(claims) == 1 and time.monotonic() - started < 0.5
        other.execute("ROLLBACK")


def test_a_limit_makes_the_claim_take_its_turn(store: PostgresStore, pg_dsn: str) -> None:
    _submit(store, 1)
    store.set_queue_parallel("default", 5)
    with psycopg.connect(pg_dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (_CLAIM_LOCK,))
        with pytest.raises(StoreUnavailable):  # lock_timeout (hold_limit): waited its turn
            store.apply("srv", Batch(claim=1))
        other.execute("ROLLBACK")
    assert len(store.apply("srv", Batch(claim=1)).claims) == 1


def test_a_tick_frozen_between_its_messages_loses_its_session(store: PostgresStore) -> None:
    """Each message is whole: between two the session is idle in a transaction, and its
    time limit ends it (a frozen server holds no lock past it)."""
    _submit(store, 1)
    with pytest.raises(StoreUnavailable, match="idle-in-transaction"):
        with store._tick_tx() as tick:
            tick.run([("taskyard_first_queued", (1,))])  # the task's row is locked now
            time.sleep(1.5)  # frozen past hold_limit
            tick.commit()
    assert len(store.apply("srv", Batch(claim=1)).claims) == 1  # the lock went with it


def test_prepared_statements_outlive_a_rolled_back_tick(store: PostgresStore) -> None:
    first, _ = _submit(store, 2)
    store.apply("srv", Batch(claim=1))
    with pytest.raises(RuntimeError), store._tick_tx() as tick:
        tick.run([("taskyard_first_queued", (1,))])
        raise RuntimeError("a failure in the middle of a tick")
    (claim,) = store.apply("srv", Batch(claim=1)).claims  # prepared still, or again
    assert claim.task_id != first


def test_the_prepared_claim_reads_the_queue_in_order_off_its_index(store: PostgresStore) -> None:
    """A prepared statement may get a generic plan (no LIMIT value): it still walks
    tasks_status from the first queued task, whatever the queue's length."""
    from taskyard.store.pgconn import numbered
    from taskyard.store.pgtick import PREPARED

    store.submit_many([TaskSpec(argv=("true",))] * 5000, by="t")
    with store._connection() as conn:
        conn.execute("ANALYZE tasks")
        conn.execute(f"PREPARE first_queued AS {numbered(PREPARED['taskyard_first_queued'])}")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN EXECUTE first_queued(2)"))
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE first_queued")
    assert "Index Scan using tasks_status on tasks" in plan, plan
    assert "Sort" not in plan, plan
