"""Metadata filters find the same tasks whatever the value's JSON type or characters:
the index they are read through (``task_meta``, schema 25, kept by triggers) must
find exactly what comparing each task's metadata as JSON finds, and keep up with
metadata changes and deletes."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard.model import TaskSpec
from taskyard.store.filters import TaskFilter, meta_path
from taskyard.store.sqlserver import SqlServerStore

METAS: list[dict[str, Any]] = [
    {"k": "plain"}, {"k": "Plain"}, {"k": "ünï cödé"}, {"k": "50%_off"}, {"k": "a\"q"},
    {"k": "back\\slash"}, {"k": "tab\there"}, {"k": 7}, {"k": -12}, {"k": 7.0}, {"k": 1e16},
    {"k": 0.1}, {"k": True}, {"k": False}, {"k": None}, {"k": "true"}, {"k": "7"},
    {"k": {"deep": "plain"}}, {"k": ["plain"]}, {"other": "plain"}, {},
]
VALUES = ["plain", "Plain", "ünï cödé", "50%_off", "a\"q", "back\\slash", "tab\there", "7",
          "-12", "7.0", "1e+16", "1e16", "0.1", "true", "false", "null", "lain", "%", "_"]


@pytest.mark.parametrize("key", ["k", "k.deep"])
def test_a_metadata_filter_finds_what_the_json_comparison_finds(store: SqlServerStore,
                                                                 key: str) -> None:
    ids = {store.submit(TaskSpec(argv=("true",), meta=meta), by="t").id: meta
           for meta in METAS}
    for value in VALUES:
        f = TaskFilter(meta=((key, value),))
        found = {t.id for t in store.browse(f, limit=100).items}
        counts, _ = store.count_tasks(f)
        unfiltered = _unfiltered(store, key, value)
        assert found == unfiltered, (value, [ids[i] for i in found])
        assert sum(counts.values()) == len(found), value


def _unfiltered(store: SqlServerStore, key: str, value: str) -> set[int]:
    """The tasks the JSON comparison alone finds (every task's metadata read)."""
    sql, params = store.meta_text(meta_path(key))
    with store._read_tx() as cur:
        cur.execute(f"SELECT id FROM tasks WHERE {sql} = ?", [*params, value])
        return {int(r[0]) for r in cur.fetchall()}


def test_the_index_follows_metadata_changes_and_deletes(store: SqlServerStore) -> None:
    def found(key: str, value: str) -> list[int]:
        return [t.id for t in store.browse(TaskFilter(meta=((key, value),))).items]

    a = store.submit(TaskSpec(argv=("true",), meta={"stage": "one", "n": {"x": 1}}), by="t")
    b = store.submit(TaskSpec(argv=("true",), meta={"stage": "one"}), by="t")
    assert found("stage", "one") == [b.id, a.id] and found("n.x", "1") == [a.id]
    store.patch_meta(a.id, {"stage": "two", "n": None}, 65536)
    assert found("stage", "one") == [b.id] and found("stage", "two") == [a.id]
    assert found("n.x", "1") == []
    long = "v" * 150  # longer than the index keeps: checked on the task as well
    store.patch_meta(b.id, {"stage": long}, 65536)
    assert found("stage", long) == [b.id] and found("stage", long[:-1]) == []
    with store._tx() as cur:
        cur.execute("DELETE FROM tasks WHERE id = ?", (b.id,))
    with store._read_tx() as cur:
        cur.execute("SELECT COUNT(*) FROM task_meta WHERE task_id = ?", (b.id,))
        assert cur.fetchone()[0] == 0


def test_a_key_is_one_path_however_it_is_spelled(store: SqlServerStore) -> None:
    """Keys with characters JSON paths quote, a key holding a dot (no dotted path names
    it), and values inside lists (no filter asks for them)."""
    odd = store.submit(TaskSpec(argv=("true",), meta={"my-key": {"é x": "v"}, "é y": "v"}),
                       by="t")
    store.submit(TaskSpec(argv=("true",), meta={"a.b": "v", "l": ["v"]}), by="t")
    nested = store.submit(TaskSpec(argv=("true",), meta={"a": {"b": "v"}}), by="t")

    def found(key: str) -> list[int]:
        return [t.id for t in store.browse(TaskFilter(meta=((key, "v"),))).items]

    assert found("my-key.é x") == [odd.id] and found("é y") == [odd.id]  # nested, top
    assert found("a.b") == [nested.id]
    assert found("l") == [] and found("l.0") == []
