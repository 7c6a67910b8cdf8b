"""A store of a million tasks for the web benchmark, filled with bulk SQL (a submit
at a time would take the better part of an hour).

Every task goes in through the ``tasks`` table so that the store's own triggers do
their work as they would in a real store: it is inserted ``queued`` (the insert
triggers write its first event and count it), then the tasks that ran are moved to
``running`` (events, counts, the wait histogram) and the ones that ended to their end
status (events, counts, the run histogram), each with its attempt row. The mix:

* the oldest ``n - RECENT`` tasks ended: 92 % succeeded, 6 % failed (exit 1), 2 %
  stopped (killed);
* the newest ``RECENT``: 16 running (the oldest of them) and 2 paused, then 10 %
  succeeded, 10 % scheduled (a start time an hour away), the rest queued;
* 8 queues from 50 % down to 0.5 % of the tasks (``rare``), 4 tenants (60/25/10/5 %),
  a name per queue (none for 1 task in 10), argv of 5 words, and metadata with 4 keys
  (``customer`` one of 5,000, ``region`` one of 4, ``batch``, ``urgent``).

The SQLite file is kept in ``bench/.cache/`` (named by the size, this module's
``FILL_VERSION`` and a digest of the SQLite migrations, so a schema change makes a
new one) and copied for each run; PostgreSQL is filled into a fresh scratch schema
every time. Either way the kept counts are checked against ``count(*)`` per status.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import common

FILL_VERSION = 2
RECENT = 20_000
RUNNING = 16
PAUSED = 2
CACHE = Path(__file__).resolve().parent / ".cache"
OWNER = "benchfill0001"
QUEUES = [("default", 500), ("emails", 200), ("reports", 100), ("builds", 80),
          ("imports", 60), ("thumbnails", 40), ("billing", 15), ("rare", 5)]
TENANTS = [("default", 600), ("acme", 250), ("globex", 100), ("initech", 50)]
REGIONS = ["eu-west", "us-east", "us-west", "ap-south"]


class Filled(NamedTuple):
    location: str  #: a SQLite file or a postgresql:// URL
    seconds: float  #: filling took (0 when a cached file was used)
    copy_seconds: float  #: copying the cached file (SQLite)
    ids: dict[str, int]  #: a task of each kind: newest, succeeded, failed, queued, running, ...


def _pick(h: str, table: list[tuple[str, int]], total: int = 1000) -> str:
    """SQL for a weighted choice by ``h`` (0..total-1)."""
    parts, edge = [], 0
    for value, weight in table[:-1]:
        edge += weight * total // 1000
        parts.append(f"WHEN {h} < {edge} THEN '{value}'")
    return f"CASE {' '.join(parts)} ELSE '{table[-1][0]}' END"


def _select(n: int, t0: float) -> str:
    """The SELECT list of one task from ``x`` (1..n) and its hashes hs, hq, ht, hm."""
    recent = n - RECENT
    queue = _pick("hq", QUEUES)
    tenant = _pick("ht", TENANTS)
    region = " ".join(f"WHEN hm % 4 = {i} THEN '{r}'" for i, r in enumerate(REGIONS))
    names = " ".join(f"WHEN '{q}' THEN '{q[:-1] if q.endswith('s') else q}-job'"
                     for q, _ in QUEUES)
    created = f"({t0} + x * 0.5)"
    return (
        f"CASE WHEN hm % 10 = 0 THEN NULL ELSE CASE {queue} {names} END END,"  # name
        f" {queue}, 'queued',"  # all go in queued: _moves takes them on
        " '[\"python\",\"-m\",\"jobs.run\",\"--item\",\"' || x || '\"]',"  # argv
        " '{}', '/srv/app',"  # env, cwd
        " '{\"customer\":\"c' || ((x * 31) % 5000) || '\",\"region\":\"' ||"
        f" CASE {region} END || '\",\"batch\":' || (x / 1000) ||"
        " ',\"urgent\":' || CASE WHEN hm % 50 = 0 THEN 'true' ELSE 'false' END || '}',"
        f" {created}, 'bench-fill', {created}, {tenant},"
        f" CASE WHEN x > {recent + RUNNING + PAUSED} AND hs >= 100 AND hs < 200"
        f" THEN {created} + 3600 ELSE NULL END"  # run_at of the ones to be scheduled
    )


COLUMNS = ("name, queue, status, argv, env, cwd, meta, created_at, changed_by, changed_at,"
           " tenant, run_at")
HASHES = ("x, (x * 7919) % 1000 AS hs, (x * 104729) % 997 AS hq, (x * 15485863) % 991 AS ht,"
          " (x * 2654435761) % 1009 AS hm")


def _moves(n: int, first: int) -> list[str]:
    """UPDATEs that take the inserted tasks (ids first..first+n-1, all queued) to their
    mix, through the status triggers."""
    recent = first + n - RECENT  # ids from here on are the recent window
    hs = f"((id - {first} + 1) * 7919) % 1000"
    live = recent + RUNNING + PAUSED  # from here on the recent window is queued mostly
    ran = f"(id < {live} OR {hs} < 100)"
    end = (f"CASE WHEN id >= {recent} THEN 'succeeded' WHEN {hs} < 920 THEN 'succeeded'"
           f" WHEN {hs} < 980 THEN 'failed' ELSE 'stopped' END")
    duration = "(0.05 + ((id * 37) % 600) * 0.5)"
    return [
        # scheduled: a start time in the future
        "UPDATE tasks SET status = 'scheduled', changed_at = created_at"
        " WHERE run_at IS NOT NULL",
        # claimed: running, attempt 1
        f"UPDATE tasks SET status = 'running', epoch = 1, owner = '{OWNER}',"
        f" pid = 100000 + (id % 30000), started_at = created_at + 0.2,"
        f" changed_at = created_at + 0.2, changed_by = 'server:{OWNER}' WHERE {ran}",
        f"INSERT INTO attempts (task_id, epoch, owner, run_tag, pid, started_at)"
        f" SELECT id, 1, owner, '{OWNER}.' || id || '.1', pid, started_at FROM tasks"
        f" WHERE status = 'running'",
        # the ones that ended
        f"UPDATE tasks SET status = {end}, finished_at = started_at + {duration},"
        f" changed_at = started_at + {duration},"
        f" reason = CASE {end} WHEN 'failed' THEN 'exit' WHEN 'stopped' THEN 'killed' END,"
        f" exit_code = CASE {end} WHEN 'succeeded' THEN 0 WHEN 'failed' THEN 1 END,"
        f" signal = CASE {end} WHEN 'stopped' THEN 15 END"
        f" WHERE status = 'running' AND (id < {recent} OR id >= {live})",
        f"UPDATE tasks SET status = 'paused', changed_at = started_at + 1"
        f" WHERE id >= {recent + RUNNING} AND id < {recent + RUNNING + PAUSED}",
        "UPDATE attempts SET status = t.status, reason = t.reason, exit_code = t.exit_code,"
        " signal = t.signal, finished_at = t.finished_at FROM (SELECT id, status, reason,"
        " exit_code, signal, finished_at FROM tasks WHERE finished_at IS NOT NULL) t"
        " WHERE attempts.task_id = t.id",
    ]


def check_counts(cur: Any, counts_from: str = "task_counts") -> dict[str, int]:
    """count(*) per status, checked against the trigger-kept counts."""
    cur.execute("SELECT status, count(*) FROM tasks GROUP BY status")
    real = {str(s): int(c) for s, c in cur.fetchall()}
    cur.execute(f"SELECT status, SUM(n) FROM {counts_from} WHERE status <> 'submitted'"
                " GROUP BY status")
    kept = {str(s): int(c) for s, c in cur.fetchall() if int(c)}
    if real != kept:
        raise RuntimeError(f"task_counts {kept} differ from count(*) {real}")
    return real


def _ids(cur: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    cur.execute("SELECT MAX(id) FROM tasks")
    found["newest"] = int(cur.fetchone()[0])
    for status in ("succeeded", "failed", "queued", "scheduled", "running", "paused"):
        cur.execute(f"SELECT MAX(id) FROM tasks WHERE status = '{status}'")
        found[status] = int(cur.fetchone()[0])
    cur.execute("SELECT MIN(id) FROM tasks WHERE status = 'queued' AND queue = 'default'")
    found["queued_first"] = int(cur.fetchone()[0])
    cur.execute("SELECT MAX(id) FROM tasks WHERE status = 'queued' AND queue = 'default'")
    found["queued_last"] = int(cur.fetchone()[0])
    found["middle_succeeded"] = found["newest"] // 2
    return found


def _digest() -> str:
    from taskyard.store import sqlite as store_sqlite

    folder = Path(store_sqlite.__file__).parent / "migrations" / "sqlite"
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def _fill_sqlite(path: Path, n: int) -> None:
    from taskyard.store import open_store

    open_store(path).close()  # the schema, migrated
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("BEGIN")
        t0 = time.time() - n * 0.5 - 60
        db.execute(f"INSERT INTO tasks ({COLUMNS}) WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL"
                   f" SELECT x + 1 FROM s WHERE x < {n}) SELECT {_select(n, t0)} FROM"
                   f" (SELECT {HASHES} FROM s)")
        first = int(db.execute("SELECT MIN(id) FROM tasks").fetchone()[0])
        for sql in _moves(n, first):
            db.execute(sql)
        check_counts(db.cursor())
        db.execute("COMMIT")  # no ANALYZE: taskyard never runs one on SQLite
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def sqlite_store(n: int, dest: Path, *, cache: bool = True) -> Filled:
    """A SQLite store of ``n`` tasks at ``dest`` (a copy of the cached one, filled first
    if there is none)."""
    cached = CACHE / f"tasks-{n}-v{FILL_VERSION}-{_digest()}.db"
    seconds = 0.0
    if not cache or not cached.exists():
        CACHE.mkdir(exist_ok=True)
        for old in CACHE.glob(f"tasks-{n}-*.db*"):
            old.unlink()
        tmp = cached.with_suffix(".filling")
        for leftover in tmp.parent.glob(tmp.name + "*"):
            leftover.unlink()
        started = time.perf_counter()
        _fill_sqlite(tmp, n)
        seconds = time.perf_counter() - started
        for side in ("-wal", "-shm"):
            Path(str(tmp) + side).unlink(missing_ok=True)
        tmp.rename(cached)
    started = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, dest)
    copy = time.perf_counter() - started
    db = sqlite3.connect(dest)
    try:
        cur = db.cursor()
        check_counts(cur)
        ids = _ids(cur)
    finally:
        db.close()
    return Filled(str(dest), seconds, copy, ids)


@contextlib.contextmanager
def postgres_store(dsn: str, n: int) -> Iterator[Filled]:
    """A fresh scratch schema of ``dsn`` holding ``n`` tasks (dropped afterwards)."""
    import psycopg

    from taskyard.store import open_store
    from taskyard.testing import postgres_schema

    with postgres_schema(dsn, "benchweb") as url:
        started = time.perf_counter()
        open_store(url).close()
        with psycopg.connect(url, autocommit=False) as conn:
            cur = conn.cursor()
            cur.execute("SET synchronous_commit = off")
            t0 = time.time() - n * 0.5 - 60
            cur.execute(f"INSERT INTO tasks ({COLUMNS}) SELECT {_select(n, t0)} FROM"
                        f" (SELECT {HASHES} FROM generate_series(1::bigint, {n}) AS x) s")
            row = cur.execute("SELECT MIN(id) FROM tasks").fetchone()
            assert row is not None
            for sql in _moves(n, int(row[0])):
                cur.execute(sql)
            conn.commit()
        store = open_store(url)
        try:
            store.fold_counts()  # type: ignore[union-attr]  # a server does it at heartbeats
        finally:
            store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            cur = conn.cursor()
            check_counts(cur)
            ids = _ids(cur)
        seconds = time.perf_counter() - started
        yield Filled(url, seconds, 0.0, ids)


if __name__ == "__main__":
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with common.tempdir("webfill") as tmp:
        got = sqlite_store(size, tmp / "taskyard.db", cache="--no-cache" not in sys.argv)
        print(f"sqlite: filled in {got.seconds:.1f}s, copied in {got.copy_seconds:.1f}s;"
              f" {got.ids}")
