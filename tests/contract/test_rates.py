"""Rate limits (at most N starts per sliding period per key), decided in the claim, so
they hold for every server (every connection) sharing the store."""

from __future__ import annotations

import time

from taskyard import why
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.rates import Rate, RateLimit, parse_rate_limit, queue_key, task_key
from taskyard.store import rates
from taskyard.store.base import Batch, Outcome
from taskyard.store.sqlserver import SqlServerStore

from .conftest import REOPEN

SPEC = TaskSpec(argv=("true",))


def _rated(key: str = "api", text: str = "2/1h") -> TaskSpec:
    return SPEC._replace(rate_limit=parse_rate_limit(f"{key}={text}"))


def _ids(claims: list) -> list[int]:  # type: ignore[type-arg]
    return [c.task_id for c in claims]


def _finish(store: SqlServerStore, owner: str, task_id: int) -> None:
    epoch = store.get(task_id).attempt
    assert store.finish(owner, [Outcome(task_id, epoch, Status.SUCCEEDED)]) == []


def test_a_task_key_lets_n_start_per_period(store: SqlServerStore) -> None:
    limited = [store.submit(_rated(), by="t").id for _ in range(4)]
    free = store.submit(SPEC, by="t").id
    assert store.get(limited[0]).rate_limit == RateLimit("api", Rate(2, 3600.0))
    claimed_from = time.time()
    assert _ids(store.claim("s1", 10)) == limited[:2] + [free]
    claimed_by = time.time()
    for task_id in limited[:2]:  # ending does not give a start back: starts are counted
        _finish(store, "s1", task_id)
    assert store.claim("s1", 10) == []
    result = store.apply("s1", Batch(claim=5))
    assert result.claims == [] and result.rate_wake_at is not None
    # a start frees an hour after the first was claimed (not an hour from now: on a
    # loaded machine the test can reach this line seconds later)
    assert claimed_from + 3600 <= result.rate_wake_at <= claimed_by + 3600


def test_two_servers_share_the_count(store: SqlServerStore, backend: str) -> None:
    other = REOPEN[backend](store)
    try:
        ids = [store.submit(_rated("mail", "3/1h"), by="t").id for _ in range(6)]
        assert _ids(store.claim("s1", 2)) == ids[:2]
        assert _ids(other.claim("s2", 5)) == [ids[2]]  # one start left, taken by s2
        assert store.claim("s1", 5) == [] and other.claim("s2", 5) == []
    finally:
        other.close()


def test_the_window_slides(store: SqlServerStore) -> None:
    """Starts older than the period stop counting, one by one, as they leave it."""
    rate = Rate(2, 10.0)
    now = time.time()
    with store._tx() as cur:
        cur.executemany("INSERT INTO rate_starts (key, at) VALUES (?, ?)",
                        [(task_key("k"), now - 9.0), (task_key("k"), now - 4.0)])
    with store._read_tx() as cur:
        full = rates.window(cur, task_key("k"), rate, now)
        assert full.starts == 2 and full.frees_at == now + 1.0
        half = rates.window(cur, task_key("k"), rate, now + 1.0)  # the oldest left
        assert half.starts == 1 and half.frees_at is None
        assert rates.window(cur, task_key("k"), rate, now + 6.0).starts == 0
        assert rates.window(cur, task_key("k"), Rate(1, 5.0), now).frees_at == now + 1.0
    ids = [store.submit(_rated("k", "2/10s"), by="t").id for _ in range(2)]
    assert store.claim("s1", 5) == []  # the two starts above fill the window
    with store._tx() as cur:  # the oldest start leaves the window (as 1 s later)
        cur.execute("UPDATE rate_starts SET at = at - 1.5 WHERE at < ?", (now - 8.0,))
    assert _ids(store.claim("s1", 5)) == [ids[0]]


def test_a_queue_rate_and_its_removal(store: SqlServerStore) -> None:
    store.set_queue_rate("io", Rate(2, 3600.0))
    assert store.queue_rate("io") == Rate(2, 3600.0)
    io = [store.submit(SPEC._replace(queue="io"), by="t").id for _ in range(3)]
    free = store.submit(SPEC, by="t").id
    assert _ids(store.claim("s1", 10)) == io[:2] + [free]
    assert store.claim("s1", 10) == []
    listed = {q["name"]: q for q in store.queue_table()}
    assert listed["io"]["rate"] == "2/1h"
    store.set_queue_rate("io", None)
    assert _ids(store.claim("s1", 10)) == [io[2]]


def test_a_held_back_key_does_not_block_the_tasks_behind(store: SqlServerStore) -> None:
    limited = [store.submit(_rated("api", "1/1h"), by="t").id for _ in range(300)]
    behind = store.submit(SPEC, by="t").id
    assert _ids(store.claim("s1", 3)) == [limited[0], behind]


def test_a_strict_queue_waits_for_its_heads_rate(store: SqlServerStore) -> None:
    store.set_queue_parallel("serial", 1)
    first = store.submit(_rated("api", "1/1h")._replace(queue="serial"), by="t").id
    _finish_claimed = _ids(store.claim("s1", 5))
    assert _finish_claimed == [first]
    _finish(store, "s1", first)
    head = store.submit(_rated("api", "1/1h")._replace(queue="serial"), by="t").id
    store.submit(SPEC._replace(queue="serial"), by="t")
    assert store.claim("s1", 5) == []  # the head waits for its key; nobody overtakes it
    assert store.get(head).status is Status.QUEUED


def test_why_and_waiting_say_a_rate_holds_it_back(store: SqlServerStore) -> None:
    store.set_queue_rate("io", Rate(1, 60.0))
    store.submit(SPEC._replace(queue="io"), by="t")
    waits = store.submit(_rated("api", "5/1m")._replace(queue="io"), by="t").id
    store.claim("s1", 5)
    facts = store.waiting(waits)
    assert [w.key for w in facts.rates] == [queue_key("io"), task_key("api")]
    reasons = why.explain(facts, time.time(), 10.0)
    held = [r for r in reasons if r.code == "rate_limit"]
    assert len(held) == 1
    assert "rate limit of queue 'io' (1/1m): 1 start(s) in the last 1m" in held[0].text
    assert "the next start is possible in" in held[0].text


def test_old_starts_are_dropped_past_the_longest_period(store: SqlServerStore) -> None:
    store.submit(_rated("k", "5/10s"), by="t")
    store.submit(_rated("k", "5/20s"), by="t")
    now = time.time()
    with store._tx() as cur:
        cur.executemany("INSERT INTO rate_starts (key, at) VALUES (?, ?)",
                        [(task_key("k"), now - 30.0), (task_key("k"), now - 15.0)])
    assert len(store.claim("s1", 1)) == 1
    with store._read_tx() as cur:
        cur.execute("SELECT COUNT(*) FROM rate_starts WHERE key=?", (task_key("k"),))
        assert cur.fetchone()[0] == 2  # the start of 15 s ago still counts for 5/20s
