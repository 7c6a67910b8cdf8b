"""The one filter of task lists: ``ls``, ``Yard.list``, the HTTP API and the panel all
hand the store a ``TaskFilter``, and this module turns it into SQL.

How each part finds its rows on a store of millions, newest first:

* status, queue, tenant: ``tasks_by_status`` / ``_queue`` / ``_tenant`` (column, id),
  read backwards, so a page stops after its 50 rows;
* name: exact without wildcards (``tasks_by_name``); a glob (``*``, ``?``) is checked
  row by row going down the ids (SQLite's GLOB, PostgreSQL's LIKE: case-sensitive both);
* kind: ``tasks_functions`` / ``tasks_commands``, partial indexes on id (a function task
  is one with a function; tracked tasks are not stored yet, so none is tracked);
* since/until (submit time): turned into a range of ids by a binary search (ids follow
  submit times, give or take ``SLACK``: see ``store/stats.py``), then checked exactly;
* metadata and text: no index can find them: they look at the newest ``SCAN_LIMIT``
  tasks only (as Oban Web limits its searches), and say so (``Page.partial``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import InvalidInput
from ..lifecycle import Status
from .sql import Cursor, SqlStoreBase

#: Tasks a metadata or free-text search looks at, newest first.
SCAN_LIMIT = 100_000
#: seconds a task's submit time may be out of its id's order (see store/stats.py)
SLACK = 600.0
#: what ``kind`` may ask for
KINDS = ("command", "function", "tracked")
#: the SQL of each kind (the WHERE of its partial index, word for word, so that the
#: planners use it). Tracked tasks are not stored yet: none is one.
KIND_SQL = {"command": "function IS NULL AND tracked = 0", "function": "function IS NOT NULL",
            "tracked": "tracked <> 0"}
GLOB_CHARS = "*?"
#: matches of a status set or a name glob from which on a page is read going down the
#: ids rather than off the index (see ``FilterSql._ordered``)
DENSE = 5000


class TaskFilter(NamedTuple):
    status: tuple[Status, ...] = ()
    queue: str | None = None
    tenant: str | None = None
    name: str | None = None  #: exact, or a glob with ``*`` and ``?``
    meta: tuple[tuple[str, str], ...] = ()  #: (dotted key path, value as text)
    text: str | None = None  #: a substring of the name, command, function or metadata
    ids: tuple[int, ...] = ()  #: only these tasks (a bulk action's snapshot)
    kind: str | None = None  #: command | function | tracked
    since: float | None = None  #: submitted at or after (unix time)
    until: float | None = None  #: submitted before (unix time)

    @property
    def scans(self) -> bool:
        """Whether the filter reads rows no index can find."""
        return bool(self.meta or self.text)

    @property
    def glob(self) -> bool:
        return self.name is not None and any(c in self.name for c in GLOB_CHARS)

    @property
    def counted(self) -> bool:
        """Whether its counts per status are the kept ones (no row is counted)."""
        return not (self.name or self.scans or self.ids or self.kind
                    or self.since is not None or self.until is not None)


def meta_path(key: str) -> list[str]:
    """``a.b`` -> ``["a", "b"]``; refuses what cannot name a key."""
    parts = key.split(".")
    if not key or any(not p or '"' in p or "\\" in p or not p.isprintable() for p in parts):
        raise InvalidInput(f"bad metadata key {key!r}", field=f"meta.{key}")
    return parts


class FilterSql(SqlStoreBase):
    """WHERE clauses of a ``TaskFilter`` (mixed into the SQL stores)."""

    #: case-insensitive LIKE (SQLite's LIKE already is, for ASCII)
    LIKE_CI = "LIKE"
    #: whether to look how many rows an index range holds before using it (SQLite: it
    #: has no statistics; PostgreSQL's planner has them and chooses itself)
    PROBES = True

    def meta_text(self, parts: list[str]) -> tuple[str, list[Any]]:
        """SQL for the metadata value at ``parts`` as text (``true``, ``3``, ``abc``)."""
        path = "$" + "".join(f'."{p}"' for p in parts)
        return ("CASE json_type(meta, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
                " ELSE CAST(json_extract(meta, ?) AS TEXT) END", [path, path])

    def glob_sql(self, pattern: str) -> tuple[str, list[Any]]:
        """SQL matching ``name`` to a glob of ``*`` and ``?`` (all else literal)."""
        return "name GLOB ?", [pattern.replace("[", "[[]")]

    def _where(self, cur: Cursor, f: TaskFilter, *, with_status: bool = True,
               ) -> tuple[list[str], list[Any], bool]:
        where: list[str] = []
        params: list[Any] = []
        if with_status and f.status:
            values = [s.value for s in f.status]
            sql = "status IN (" + ",".join("?" * len(values)) + ")"
            where.append(self._ordered(cur, sql, values, "status") if len(values) > 1 else sql)
            params.extend(values)
        for column in ("queue", "tenant"):
            value = getattr(f, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        self._where_name(cur, f, where, params)
        if f.kind is not None:
            where.append(KIND_SQL[f.kind])
        self._where_times(cur, f, where, params)
        if f.ids:
            where.append("id IN (" + ",".join("?" * len(f.ids)) + ")")
            params.extend(f.ids)
        self._where_scans(f, where, params)
        partial = False
        if f.scans:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM tasks")
            floor = int(cur.fetchone()[0]) - SCAN_LIMIT
            if floor > 0:
                where.append("id > ?")
                params.append(floor)
                partial = True
        return where, params, partial

    def _ordered(self, cur: Cursor, sql: str, params: list[Any], column: str) -> str:
        """``sql`` on ``column`` as a page newest first reads it best. Its index holds
        the matches in id order within each value (status) or name, so they must be
        sorted: cheap for a few, dear for many (a glob matching 100,000 names: 230 ms).
        Many matches are dense enough to meet 50 of them soon going down the ids: then
        ``+column`` (SQLite) keeps the index out. One index-only look decides."""
        if not self.PROBES:
            return sql
        cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE {sql} LIMIT {DENSE})",
                    params)
        return sql.replace(column, f"+{column}", 1) if int(cur.fetchone()[0]) >= DENSE else sql

    def _where_name(self, cur: Cursor, f: TaskFilter, where: list[str],
                    params: list[Any]) -> None:
        if f.name is None:
            return
        if f.glob:
            sql, args = self.glob_sql(f.name)
            where.append(self._ordered(cur, sql, args, "name"))
            params.extend(args)
        else:
            where.append("name = ?")
            params.append(f.name)

    def _where_times(self, cur: Cursor, f: TaskFilter, where: list[str],
                     params: list[Any]) -> None:
        """Submit times as id ranges (interpolated: ints of ours, so that PostgreSQL
        plans the range it is), checked exactly as well."""
        if f.since is not None:
            where.append(f"id >= {first_task(cur, f.since - SLACK):d} AND created_at >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append(f"id < {first_task(cur, f.until + SLACK):d} AND created_at < ?")
            params.append(f.until)

    def _where_scans(self, f: TaskFilter, where: list[str], params: list[Any]) -> None:
        for key, value in f.meta:
            sql, args = self.meta_text(meta_path(key))
            if verbatim(value):  # a cheap test of the text first: parsing JSON is dear
                where.append("meta LIKE ? ESCAPE '\\'")
                params.append("%" + like_escape(value) + "%")
            where.append(f"{sql} = ?")
            params.extend([*args, value])
        if f.text:
            pattern = "%" + like_escape(f.text) + "%"
            where.append(f"(COALESCE(name, '') || ' ' || argv || ' ' || COALESCE(function, '')"
                         f" || ' ' || meta) {self.LIKE_CI} ? ESCAPE '\\'")
            params.append(pattern)


def first_task(cur: Any, at: float) -> int:
    """The lowest task id from which on every task was submitted at ``at`` or later
    (tasks before it may have been too): a binary search, one primary-key look-up a
    step."""
    # Two subqueries: SQLite reads MIN and MAX off the key only one to a query (both
    # in one SELECT scanned the table: 80 ms on a million tasks).
    cur.execute("SELECT (SELECT MIN(id) FROM tasks), (SELECT MAX(id) FROM tasks)")
    low, high = cur.fetchone()
    if low is None:
        return 0
    low, high = int(low), int(high) + 1
    while low < high:
        middle = (low + high) // 2
        cur.execute("SELECT id, created_at FROM tasks WHERE id >= ? ORDER BY id LIMIT 1",
                    (middle,))
        found, created = cur.fetchone()
        if created < at:
            low = int(found) + 1  # and every id up to it: there is none between
        else:
            high = middle
    return low


def glob_to_like(pattern: str) -> str:
    """A glob of ``*`` and ``?`` as a LIKE pattern (escape ``\\``)."""
    return like_escape(pattern).replace("*", "%").replace("?", "_")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def verbatim(value: str) -> bool:
    """Whether stored metadata whose value at some key reads ``value`` (as a filter
    compares it) holds ``value`` verbatim in its text: metadata is stored as
    ``json.dumps(ensure_ascii=False)``, which writes strings as they are but for ``"``,
    ``\\`` and control characters, and integers and booleans as they read; a float may
    read otherwise (``1e+16``), so a value that looks like one is not tested so."""
    if not value or any(c in value for c in '"\\') or not value.isprintable():
        return False
    try:
        float(value)
    except ValueError:
        return True
    return value.lstrip("-").isdigit()


def status_filter(values: Sequence[str], field: str = "status") -> tuple[Status, ...]:
    """Statuses from their names; an unknown one is an error naming ``field``."""
    found = []
    for value in values:
        try:
            found.append(Status(value))
        except ValueError:
            raise InvalidInput(f"unknown status {value!r} (one of"
                               f" {', '.join(s.value for s in Status)})", field=field) from None
    return tuple(found)
