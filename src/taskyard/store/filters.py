"""The one filter of task lists: ``ls``, ``Yard.list``, the HTTP API and the panel all
hand the store a ``TaskFilter``, and this module turns it into SQL.

How each part finds its rows on a store of millions, newest first:

* status, queue, tenant: ``tasks_by_status`` / ``_queue`` / ``_tenant`` (column, id),
  read backwards, so a page stops after its 50 rows;
* name: exact without wildcards (``tasks_by_name``); a glob (``*``, ``?``) is checked
  row by row going down the ids (SQLite's GLOB, PostgreSQL's LIKE: case-sensitive both);
* kind: ``tasks_functions`` / ``tasks_commands`` / ``tasks_tracked``, partial indexes on id;
* since/until (submit time): turned into a range of ids by a binary search (ids follow
  submit times, give or take ``SLACK``: see ``store/stats.py``), then checked exactly;
* metadata: ``task_meta`` (key path, value, task id), kept by triggers (schema 25): the
  tasks of one (key, value) newest first off its primary key;
* text: trigrams (SQLite: the FTS5 table ``tasks_text``; PostgreSQL: pg_trgm's GIN
  index ``tasks_text``), then LIKE on the task: words of ``MIN_TEXT`` characters or more.

A metadata or text filter is read off its own index (the rows joined to ``tasks``) when
it is the only condition or finds few tasks; else the other conditions' index leads and
it is checked per task (see ``FilterSql._driver``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import InvalidInput
from ..lifecycle import Status
from .sql import Cursor, SqlStoreBase

#: seconds a task's submit time may be out of its id's order (see store/stats.py)
SLACK = 600.0
#: what ``kind`` may ask for
KINDS = ("command", "function", "tracked")
#: the SQL of each kind (the WHERE of its partial index, word for word, so that the
#: planners use it)
KIND_SQL = {"command": "function IS NULL AND tracked = 0", "function": "function IS NOT NULL",
            "tracked": "tracked <> 0"}
GLOB_CHARS = "*?"
#: matches of a status set, a name glob, a metadata value or a text from which on they
#: are dense enough to meet a page of them soon going down another index (see
#: ``FilterSql._ordered`` and ``FilterSql._driver``)
DENSE = 5000
#: characters of a metadata value ``task_meta`` keeps (a longer one is checked exactly)
META_PREFIX = 100
#: the shortest ``text`` (a trigram index finds nothing shorter)
MIN_TEXT = 3
#: the text ``text`` is looked for in (the trigram indexes hold the same; metadata is
#: ``meta``'s: its text doubled what a submit spent on the trigram index)
TEXT_SQL = "(COALESCE(name, '') || ' ' || argv || ' ' || COALESCE(function, ''))"


class TaskFilter(NamedTuple):
    status: tuple[Status, ...] = ()
    queue: str | None = None
    tenant: str | None = None
    name: str | None = None  #: exact, or a glob with ``*`` and ``?``
    meta: tuple[tuple[str, str], ...] = ()  #: (dotted key path, value as text)
    text: str | None = None  #: a substring of the name, command or function
    ids: tuple[int, ...] = ()  #: only these tasks (a bulk action's snapshot)
    kind: str | None = None  #: command | function | tracked
    since: float | None = None  #: submitted at or after (unix time)
    until: float | None = None  #: submitted before (unix time)

    @property
    def scans(self) -> bool:
        """Whether the filter asks a side index (metadata, text) as well."""
        return bool(self.meta or self.text)

    @property
    def glob(self) -> bool:
        return self.name is not None and any(c in self.name for c in GLOB_CHARS)

    @property
    def counted(self) -> bool:
        """Whether its counts per status are the kept ones (no row is counted)."""
        return not (self.name or self.scans or self.ids or self.kind
                    or self.since is not None or self.until is not None)


class Query(NamedTuple):
    """A filter as SQL: ``SELECT ... FROM {source} WHERE {where} ORDER BY {order} DESC``
    reads the matching tasks newest first (``order`` is the id of the index that leads)."""

    source: str
    order: str
    where: list[str]
    params: list[Any]


def meta_path(key: str) -> list[str]:
    """``a.b`` -> ``["a", "b"]``; refuses what cannot name a key."""
    parts = key.split(".")
    if not key or any(not p or '"' in p or "\\" in p or not p.isprintable() for p in parts):
        raise InvalidInput(f"bad metadata key {key!r}", field=f"meta.{key}")
    return parts


class FilterSql(SqlStoreBase):
    """WHERE clauses of a ``TaskFilter`` (mixed into the SQL stores)."""

    #: case-insensitive LIKE (SQLite's LIKE already is, for ASCII), with its escape
    LIKE_CI = "LIKE"
    LIKE_ESCAPE = " ESCAPE '\\'"
    #: a join whose left side leads (SQLite: CROSS JOIN; PostgreSQL orders joins itself)
    LEADING_JOIN = "CROSS JOIN"
    #: whether to look how many rows an index range holds before using it (SQLite: it
    #: has no statistics; PostgreSQL's planner has them and chooses itself)
    PROBES = True

    def meta_text(self, parts: list[str]) -> tuple[str, list[Any]]:
        """SQL for the metadata value at ``parts`` as text (``true``, ``3``, ``abc``)."""
        path = "$" + "".join(f'."{p}"' for p in parts)
        return ("CASE json_type(meta, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
                " ELSE CAST(json_extract(meta, ?) AS TEXT) END", [path, path])

    def meta_key(self, parts: list[str]) -> tuple[str, list[Any]]:
        """SQL for ``task_meta.key`` of the key path ``parts``: json_tree's ``fullkey``,
        asked of SQLite itself (its quoting of keys differs between versions)."""
        doc: Any = None
        for part in reversed(parts):
            doc = {part: doc}
        return "(SELECT fullkey FROM json_tree(?) WHERE type = 'null')", [_json(doc)]

    def text_index(self, text: str) -> tuple[str, str, str, list[Any]] | None:
        """(table, its id, condition, parameters) of the tasks whose text may hold
        ``text``, read off a trigram index, or None where the planner picks it itself."""
        grams = sorted({text[i:i + MIN_TEXT] for i in range(len(text) - MIN_TEXT + 1)})
        match = " ".join('"' + g.replace('"', '""') + '"' for g in grams)
        return "tasks_text", "tasks_text.rowid", "tasks_text MATCH ?", [match]

    def glob_sql(self, pattern: str) -> tuple[str, list[Any]]:
        """SQL matching ``name`` to a glob of ``*`` and ``?`` (all else literal)."""
        return "name GLOB ?", [pattern.replace("[", "[[]")]

    def _where(self, cur: Cursor, f: TaskFilter, *, with_status: bool = True) -> Query:
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
            where.append("tasks.id IN (" + ",".join("?" * len(f.ids)) + ")")
            params.extend(f.ids)
        return self._side_indexes(cur, f, Query("tasks", "tasks.id", where, params))

    def _side_indexes(self, cur: Cursor, f: TaskFilter, q: Query) -> Query:
        """``q`` with the metadata and text conditions: the one ``_driver`` picks leads
        (joined to ``tasks``), the others are checked per task."""
        lead = self._driver(cur, f, bool(q.where))
        source, order = q.source, q.order
        where, params = list(q.where), list(q.params)
        for i, (key, value) in enumerate(f.meta):
            parts = meta_path(key)
            key_sql, key_params = self.meta_key(parts)
            match = f"m{i}.key = {key_sql} AND m{i}.value = ?"
            args = [*key_params, value[:META_PREFIX]]
            if lead == i:
                source = f"task_meta m{i} {self.LEADING_JOIN} tasks ON tasks.id = m{i}.task_id"
                order = f"m{i}.task_id"
                where.append(match)
            else:
                where.append(f"EXISTS (SELECT 1 FROM task_meta m{i} WHERE {match}"
                             f" AND m{i}.task_id = tasks.id)")
            params.extend(args)
            if len(value) >= META_PREFIX:  # the index holds its beginning only
                sql, exact = self.meta_text(parts)
                where.append(f"{sql} = ?")
                params.extend([*exact, value])
        if f.text:
            found = self.text_index(f.text)
            if lead == len(f.meta) and found is not None:
                table, order, sql, args = found
                source = f"{table} {self.LEADING_JOIN} tasks ON tasks.id = {order}"
                where.append(sql)
                params.extend(args)
            where.append(f"{TEXT_SQL} {self.LIKE_CI} ?{self.LIKE_ESCAPE}")
            params.append("%" + like_escape(f.text) + "%")
        return Query(source, order, where, params)

    def _driver(self, cur: Cursor, f: TaskFilter, others: bool) -> int | None:
        """Which side index leads: a metadata condition (its place in ``f.meta``) or the
        text (``len(f.meta)``), or None (the ``tasks`` indexes lead). Alone, the first
        leads: its index holds its tasks newest first. With other conditions, the one
        with the fewest tasks leads if it has fewer than ``DENSE``; else the others' index
        leads (SQLite looks, PostgreSQL's planner orders the joins itself)."""
        ways = len(f.meta) + (1 if f.text and self.text_index(f.text) is not None else 0)
        if not ways:
            return None
        if not self.PROBES or not others and ways == 1:
            return 0 if f.meta or not others else None
        sizes = [self._probe_meta(cur, key, value) for key, value in f.meta]
        if len(sizes) < ways:
            sizes.append(self._probe_text(cur, f.text or ""))
        fewest = min(range(ways), key=sizes.__getitem__)
        return fewest if sizes[fewest] < DENSE or not others else None

    def _probe_meta(self, cur: Cursor, key: str, value: str) -> int:
        key_sql, key_params = self.meta_key(meta_path(key))
        cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM task_meta WHERE key = {key_sql}"
                    f" AND value = ? LIMIT {DENSE})", [*key_params, value[:META_PREFIX]])
        return int(cur.fetchone()[0])

    def _probe_text(self, cur: Cursor, text: str) -> int:
        found = self.text_index(text)
        assert found is not None
        table, _, sql, args = found
        cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {sql} LIMIT {DENSE})",
                    args)
        return int(cur.fetchone()[0])

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
            where.append(f"tasks.id >= {first_task(cur, f.since - SLACK):d}"
                         " AND created_at >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append(f"tasks.id < {first_task(cur, f.until + SLACK):d}"
                         " AND created_at < ?")
            params.append(f.until)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


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
