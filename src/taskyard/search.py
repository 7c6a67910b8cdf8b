"""What a user asks a task list for, checked and turned into the store's one
``TaskFilter``: ``taskyard ls``, ``Yard.list`` and the HTTP API (``web/deps.py``) all
come here, so a filter means the same everywhere. Also the page cursors they hand out.

Light on imports: ``taskyard ls`` loads it on every run.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .store.filters import KINDS, MIN_TEXT, TaskFilter, meta_path, status_filter
from .validate import check_unicode, parse_duration, parse_time

if TYPE_CHECKING:
    from .model import Task
    from .store.browse import BrowseStore

MAX_ID = 2**63 - 1  #: ids are 64-bit in every store
MAX_TEXT = 1000  #: characters of a name, queue, tenant, text or metadata value asked for
#: a time given as a string: ISO 8601, or a duration meaning that long ago
TimeArg = str | float | int | datetime | timedelta | None


def make_filter(*, status: Sequence[str] = (), queue: str | None = None,
                tenant: str | None = None, name: str | None = None,
                meta: Sequence[tuple[str, str]] = (), text: str | None = None,
                kind: str | None = None, since: TimeArg = None,
                until: TimeArg = None, text_field: str = "text") -> TaskFilter:
    """The filter, every part checked (a bad one is ``InvalidInput`` naming it; the
    text by ``text_field``: the HTTP API calls it ``q``). An empty queue, tenant, name,
    text, kind, since or until is bad input (``--name "$UNSET"`` listing every task,
    or a bulk action acting on them all, would be a trap): leave it out to match all.
    A metadata value may be empty (it matches an empty string)."""
    texts = [(queue, "queue"), (tenant, "tenant"), (name, "name"), (text, text_field)]
    for value, field in [*texts, (kind, "kind"), (since, "since"), (until, "until")]:
        if isinstance(value, str) and not value:
            raise InvalidInput(f"{field} is empty: leave it out to match every task",
                               field=field)
    texts += [(value, f"meta.{key}") for key, value in meta]
    for value, field in texts:
        _check_text(value, field)
    for key, _ in meta:
        meta_path(key)
    if text and len(text) < MIN_TEXT:
        raise InvalidInput(f"{text_field} must be {MIN_TEXT} characters or more (it is"
                           " looked up by its trigrams)", field=text_field)
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r} (one of {', '.join(KINDS)})", field="kind")
    return TaskFilter(status=status_filter(status), queue=queue or None, tenant=tenant,
                      name=name or None, meta=tuple(sorted(meta)), text=text or None,
                      kind=kind or None, since=time_arg(since, "since"),
                      until=time_arg(until, "until"))


def _check_text(value: str | None, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{field} is too long", field=field)
    if "\0" in value:  # PostgreSQL refuses it; SQLite's LIKE would end the pattern there
        raise InvalidInput(f"{field} contains a NUL character", field=field)
    check_unicode(value, field)


def time_arg(value: TimeArg, field: str) -> float | None:
    """A unix time from ISO 8601 (``2026-11-23T10:00:00Z``; no zone: local time), a
    duration ago (``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``), a number (unix time), a
    datetime or a timedelta (that long ago)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return time.time() - parse_duration(value, field)
        except InvalidInput:
            pass
        try:
            return parse_time(value, field)
        except InvalidInput:
            raise InvalidInput(f"invalid {field} {value!r}: use ISO 8601"
                               " (2026-11-23T10:00:00Z) or a duration ago (30s, 10m, 2h, 1d)",
                               field=field) from None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, timedelta):
        return time.time() - value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(f"{field} must be a time: ISO 8601, a duration ago (1h),"
                           " a unix time or a datetime", field=field)
    return float(value)


def meta_pairs(given: Sequence[str] | Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Metadata conditions as (dotted key, value as text): from ``KEY=VALUE`` strings
    (the value JSON, or else the string as it is) or a mapping of key to value."""
    if given is None:
        return []
    if isinstance(given, Mapping):
        return [(str(k), meta_text(v, str(k))) for k, v in given.items()]
    found = []
    for pair in given:
        key, sep, raw = str(pair).partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad metadata filter {pair!r}: use KEY=VALUE (KEY may be a.b)",
                               field="meta")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        found.append((key, meta_text(value, key)))
    return found


def meta_text(value: Any, key: str) -> str:
    """A metadata value as the store compares it: a string as it is, numbers and
    booleans as JSON writes them; null, lists and objects cannot be asked for."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) and value == value and abs(value) != float("inf"):
        return json.dumps(value)
    raise InvalidInput(f"bad metadata filter for {key!r}: compare with a string, a number,"
                       " true or false", field=f"meta.{key}")


def encode_cursor(before: int | None) -> str | None:
    """The cursor of the page after one whose last task is ``before`` (None: no more)."""
    if before is None:
        return None
    return base64.urlsafe_b64encode(f"before:{before}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor continues below; a cursor not made by ``encode_cursor`` is bad input."""
    if not cursor:
        return None
    try:
        if not isinstance(cursor, str) or not cursor.isascii():
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, value = raw.partition(":")
        before = int(value)
        if kind != "before" or not 1 <= before <= MAX_ID or not value.isdigit():
            raise ValueError(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("bad cursor: pass next_cursor from the previous page as it is",
                           field="cursor") from None
    return before


class TaskList(list["Task"]):
    """A page of tasks (a list), with the cursor of the next page (None: the last);
    ``partial`` is never true since metadata and text have indexes (schema 25)."""

    next_cursor: str | None = None
    partial: bool = False


class TaskCounts(dict[str, int]):
    """Tasks per status (a dict); ``partial``: the filter was counted one task at a time
    and stopped at the newest ``COUNT_CAP`` matches (the counts are theirs)."""

    partial: bool = False


def task_list(store: BrowseStore, *, status: str | Sequence[str] = (),
              meta: Sequence[str] | Mapping[str, Any] | None = None, limit: int | None = None,
              cursor: str | None = None, **given: Any) -> TaskList:
    """``Yard.list``: the tasks ``make_filter(**given)`` finds, newest first."""
    from . import validate as v

    statuses = [status] if isinstance(status, str) else list(v.strings(status, "status"))
    f = make_filter(status=statuses, meta=meta_pairs(meta), **given)
    before = decode_cursor(cursor)
    page = store.browse(f, before=before,
                        limit=None if limit is None else v.whole(limit, "limit") or None)
    found = TaskList(page.items)
    found.next_cursor = encode_cursor(page.next_before)
    found.partial = page.partial
    return found


def task_counts(store: BrowseStore, *, status: str | Sequence[str] = (),
                meta: Sequence[str] | Mapping[str, Any] | None = None,
                **given: Any) -> TaskCounts:
    """``Yard.counts``: tasks per status matching ``make_filter(**given)`` (with
    ``status``: those statuses only). A filter the kept counts cannot answer (name,
    kind, times, metadata, text) counts its newest ``COUNT_CAP`` (10,000) matches at
    most, and then says so (``.partial``)."""
    from . import validate as v

    statuses = [status] if isinstance(status, str) else list(v.strings(status, "status"))
    f = make_filter(status=statuses, meta=meta_pairs(meta), **given)
    found, partial = store.count_tasks(f)
    counts = TaskCounts({s.value: found[s.value] for s in f.status} if f.status else found)
    counts.partial = partial
    return counts
