"""What the server log follows: every status change as an event row, in id order."""

from __future__ import annotations

from taskyard.model import TaskSpec
from taskyard.store.sqlserver import SqlServerStore


def test_transitions_since_gives_each_change_with_its_task(store: SqlServerStore) -> None:
    start = store.last_event()
    first = store.submit(TaskSpec(argv=("true",), name="one", queue="q"), by="alice")
    second = store.submit(TaskSpec(argv=("true",)), by="bob")
    store.cancel(first.id, by="carol")
    rows = store.transitions_since(start)
    assert [row[1:2] + row[3:9] + row[9:] for row in rows] == [
        (first.id, None, "queued", "alice", 0, None, "one", "q"),
        (second.id, None, "queued", "bob", 0, None, None, "default"),
        (first.id, "queued", "stopped", "carol", 0, "killed", "one", "q")]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert store.transitions_since(rows[0][0], limit=1) == rows[1:2]
    assert store.last_event() == rows[-1][0]
