"""Search and listing on every store: each filter of ``ls`` / ``Yard.list`` / the HTTP
API (``search.make_filter`` into ``store.browse``), newest first, a page at a time with
cursors, and the counts per status."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard import search
from taskyard.errors import InvalidInput
from taskyard.model import Task, TaskSpec
from taskyard.store.sqlserver import SqlServerStore


def _add(store: SqlServerStore, name: str | None, *, queue: str = "default",
         tenant: str = "default", meta: dict[str, Any] | None = None,
         function: str | None = None, argv: tuple[str, ...] = ("true",)) -> Task:
    spec = TaskSpec(argv=() if function else argv, name=name, queue=queue, tenant=tenant,
                    meta=meta or {}, function=function, kwargs={} if function else None)
    return store.submit(spec, by="test")


@pytest.fixture
def tasks(store: SqlServerStore) -> list[Task]:
    store.add_tenant("acme")
    made = [
        _add(store, "report-daily", queue="reports", meta={"a": {"b": 3}, "who": "ann"}),
        _add(store, "report-weekly", queue="reports", tenant="acme", meta={"a": {"b": "3"}}),
        _add(store, "Report-monthly", meta={"flag": True}),
        _add(store, "build[1]", queue="builds", argv=("make", "all")),
        _add(store, None, function="jobs.resize", meta={"who": "bob"}),
        _add(store, "resize-job", function="jobs.resize", tenant="acme"),
    ]
    store.cancel(made[2].id, by="test")
    return made


def ids(store: SqlServerStore, **given: Any) -> list[int]:
    f = search.make_filter(meta=search.meta_pairs(given.pop("meta", None)), **given)
    return [t.id for t in store.browse(f, limit=None).items]


def test_listed_newest_first_and_each_filter(store: SqlServerStore, tasks: list[Task]) -> None:
    i = [t.id for t in tasks]
    assert ids(store) == i[::-1]
    assert ids(store, status=["stopped"]) == [i[2]]
    assert ids(store, status=["stopped", "queued"]) == i[::-1]
    assert ids(store, queue="reports") == [i[1], i[0]]
    assert ids(store, tenant="acme") == [i[5], i[1]]
    assert ids(store, name="report-daily") == [i[0]]
    assert ids(store, name="report-*") == [i[1], i[0]]  # globs are case-sensitive
    assert ids(store, name="*port-?????") == [i[0]]
    assert ids(store, name="*port-*") == [i[2], i[1], i[0]]
    assert ids(store, name="build[1]") == [i[3]]  # brackets are literal
    assert ids(store, name="build[*") == [i[3]]
    assert ids(store, kind="function") == [i[5], i[4]]
    assert ids(store, kind="command") == [i[3], i[2], i[1], i[0]]
    assert ids(store, kind="tracked") == []
    from taskyard.tracked import track

    outside = track(store, name="outside", by="t")
    assert ids(store, kind="tracked") == [outside.id]
    assert outside.id not in ids(store, kind="command") + ids(store, kind="function")
    assert ids(store, text="make") == [i[3]]
    assert ids(store, text="resize") == [i[5], i[4]]  # function and name


def test_metadata_json_or_string_values_and_nested_keys(store: SqlServerStore,
                                                        tasks: list[Task]) -> None:
    i = [t.id for t in tasks]
    assert ids(store, meta=["a.b=3"]) == [i[1], i[0]]  # 3 and "3" read alike
    assert ids(store, meta=['a.b="3"']) == [i[1], i[0]]
    assert ids(store, meta=["flag=true"]) == [i[2]]
    assert ids(store, meta=["who=ann"]) == [i[0]]  # not JSON: the string
    assert ids(store, meta=["who=ann", "a.b=3"]) == [i[0]]  # all of them
    assert ids(store, meta={"who": "bob"}) == [i[4]]
    for bad in (["a.b"], ["=3"], ["a..b=1"], ["a=null"], ["a={}"], ["a=[1]"]):
        with pytest.raises(InvalidInput) as err:
            ids(store, meta=bad)
        assert err.value.field.startswith("meta")


def test_since_and_until_are_submit_times(store: SqlServerStore, tasks: list[Task]) -> None:
    i = [t.id for t in tasks]
    middle = tasks[3].created_at
    assert ids(store, since=middle) == [i[5], i[4], i[3]]
    assert ids(store, until=middle) == [i[2], i[1], i[0]]
    assert ids(store, since=tasks[1].created_at, until=middle) == [i[2], i[1]]
    assert ids(store, since="1h") == i[::-1]  # a duration: that long ago
    assert ids(store, until="2000-01-01T00:00:00Z") == []
    with pytest.raises(InvalidInput) as err:
        ids(store, since="yesterday")
    assert err.value.field == "since"


def test_pages_with_cursors_cover_everything_once(store: SqlServerStore,
                                                  tasks: list[Task]) -> None:
    f = search.make_filter()
    seen: list[int] = []
    before = None
    while True:
        page = store.browse(f, before=before, limit=2)
        seen += [t.id for t in page.items]
        cursor = search.encode_cursor(page.next_before)
        if cursor is None:
            break
        before = search.decode_cursor(cursor)
    assert seen == [t.id for t in tasks][::-1]
    for bad in ("x", "YmVmb3JlOi0x", "bm9wZTox", "\u00e9"):
        with pytest.raises(InvalidInput) as err:
            search.decode_cursor(bad)
        assert err.value.field == "cursor"


def test_counts_per_status_with_filters(store: SqlServerStore, tasks: list[Task]) -> None:
    def counts(**given: Any) -> dict[str, int]:
        found, partial = store.count_tasks(search.make_filter(**given))
        assert not partial
        return {k: v for k, v in found.items() if v}

    assert counts() == {"queued": 5, "stopped": 1}
    assert counts(queue="reports") == {"queued": 2}
    assert counts(kind="function") == {"queued": 2}
    assert counts(kind="command") == {"queued": 3, "stopped": 1}
    assert counts(name="?eport-*") == {"queued": 2, "stopped": 1}
    assert counts(since=tasks[3].created_at) == {"queued": 3}


def test_bad_filters_name_their_field() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": ["nope"]}, "status"), ({"kind": "script"}, "kind"),
        ({"queue": "x" * 1001}, "queue"), ({"name": "a\0b"}, "name"),
        ({"text": "\ud800"}, "text"), ({"until": "soon"}, "until"),
        ({"since": float("nan")}, "since"), ({"text": "ab"}, "text"),
    ]
    for given, field in cases:
        with pytest.raises(InvalidInput) as err:
            search.make_filter(**given)
        assert err.value.field == field, given


def test_dense_and_sparse_matches_beside_other_filters(store: SqlServerStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A metadata or text condition that finds few tasks is read off its own index;
    one that finds many (``DENSE``, made small here) is checked per task behind another
    filter's index. Both find the same tasks, the oldest as well as the newest (no
    window of newest tasks any more), and page alike."""
    from taskyard.store import filters

    monkeypatch.setattr(filters, "DENSE", 20)
    made = [_add(store, "needle-first", queue="even", meta={"all": "yes", "rare": "x", "i": 0})]
    made += [_add(store, f"n{i}", queue="odd" if i % 2 else "even",
                  meta={"all": "yes", "i": i % 7}) for i in range(1, 90)]

    def expect(keep: Any) -> list[int]:
        return [t.id for t in reversed(made) if keep(t)]

    odd = expect(lambda t: t.queue == "odd")
    assert ids(store, meta={"all": "yes"}, queue="odd") == odd
    assert ids(store, meta={"rare": "x"}, queue="even") == [made[0].id]
    assert ids(store, meta={"i": 3}, queue="odd") == expect(
        lambda t: t.queue == "odd" and t.meta["i"] == 3)
    assert ids(store, meta={"all": "yes", "i": 3}) == expect(lambda t: t.meta["i"] == 3)
    assert ids(store, text="needle") == [made[0].id]
    assert ids(store, text="needle", queue="even") == [made[0].id]
    assert ids(store, text="NEEDLE", meta={"all": "yes"}) == [made[0].id]
    assert ids(store, text="true", queue="odd") == odd  # every argv: checked per task
    for given in ({"meta": {"all": "yes"}, "queue": "odd"}, {"meta": {"all": "yes"}},
                  {"text": "true"}):
        f = search.make_filter(meta=search.meta_pairs(given.pop("meta", None)), **given)
        seen: list[int] = []
        before = None
        while True:
            page = store.browse(f, before=before, limit=7)
            seen += [t.id for t in page.items]
            if page.next_before is None:
                break
            before = page.next_before
        assert seen == ids(store, **dict(given, meta=dict(f.meta)))


def test_counts_stop_at_the_newest_count_cap_matches(store: SqlServerStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from taskyard.store import browse

    monkeypatch.setattr(browse, "COUNT_CAP", 5)
    for i in range(8):
        task = _add(store, f"job-{i}", meta={"team": "ops"})
        if i >= 6:
            store.cancel(task.id, by="test")
    found, partial = store.count_tasks(search.make_filter(meta=[("team", "ops")]))
    assert partial and {k: v for k, v in found.items() if v} == {"queued": 3, "stopped": 2}
    found, partial = store.count_tasks(search.make_filter(name="job-?", status=["queued"]))
    assert partial  # the newest 5 matches of the name, whatever their status
    found, partial = store.count_tasks(search.make_filter(name="job-1"))
    assert not partial and sum(found.values()) == 1
    found, partial = store.count_tasks(search.make_filter())  # the kept counts: no cap
    assert not partial and sum(found.values()) == 8
