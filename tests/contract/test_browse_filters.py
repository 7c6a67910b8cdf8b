"""Metadata filters find the same tasks whatever the value's JSON type or characters:
the cheap text test that runs before the JSON is parsed (``filters.verbatim``) must
never leave out a task the JSON comparison would find."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard.model import TaskSpec
from taskyard.store.filters import TaskFilter, verbatim
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
    """The tasks the JSON comparison alone finds (the text test turned off)."""
    import taskyard.store.filters as browse

    saved = browse.verbatim
    browse.verbatim = lambda text: False
    try:
        return {t.id for t in store.browse(TaskFilter(meta=((key, value),)), limit=100).items}
    finally:
        browse.verbatim = saved


def test_verbatim_values() -> None:
    assert verbatim("plain") and verbatim("ünï cödé") and verbatim("50%_off")
    assert verbatim("7") and verbatim("-12") and verbatim("true")
    assert not verbatim("") and not verbatim('a"q') and not verbatim("back\\slash")
    assert not verbatim("tab\there") and not verbatim("7.0") and not verbatim("1e16")
    assert not verbatim("nan") and not verbatim("inf")
