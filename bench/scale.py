"""scale: a million queued tasks (issue 17, goal 4), on SQLite and PostgreSQL.

* The steady claim rate of ``true`` tasks, 2 slots, with 1,000 and with 1,000,000
  queued: tasks finished per second over a window after a warm-up, and the server's
  CPU per task over the same window. A feeder in this process keeps the queue at its
  size (every 50 ms it reads the kept counts and submits what ran meanwhile), the
  same way for both sizes, so that 1,000 stays 1,000 (it would drain in a second);
  goal: the rate with 1,000,000 queued within 20% of the rate with 1,000.
* ``Yard.list(status="queued", limit=50)`` on the big store (goal under 20 ms).
* The store's bytes per finished ``true`` task (no output): a fresh store's size
  before and after K tasks ran (SQLite: the file after a checkpoint, and the pages
  of each table and index from ``dbstat``; PostgreSQL: ``pg_total_relation_size`` of
  every table, as written and after ``VACUUM FULL``); goal under 1 KiB.

The store is filled by the product's bulk submit (``submit_many``, 20,000 a
transaction), untimed; the time it took is printed. The SQLite store of the big
size is cached in ``bench/.cache`` (named by the size and the migrations) and
copied for each run.

    .venv/bin/python bench/scale.py [--quick] [--no-pg] [--no-sqlite] [--size N] [--repeat R]

``--quick``: 100,000 queued instead of 1,000,000, shorter windows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import common
import web_fill
from common import Section
from taskyard import Yard
from taskyard.model import TaskSpec
from taskyard.store import open_store
from taskyard.testing import postgres_schema, server_process, stop_server

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SMALL = 1_000
FILL_CHUNK = 20_000
FEED_EVERY = 0.05  #: seconds between the feeder's looks at the queue
LIST_MS = 20.0
KIB = 1024.0
TRUE = TaskSpec(argv=("true",))


def fill(location: str, n: int) -> float:
    """Submit ``n`` queued ``true`` tasks through the bulk submit; seconds taken."""
    started = time.perf_counter()
    store = open_store(location)
    try:
        for start in range(0, n, FILL_CHUNK):
            store.submit_many([TRUE] * min(FILL_CHUNK, n - start), by="bench-fill")
    finally:
        store.close()
    return time.perf_counter() - started


def sqlite_filled(n: int, dest: Path) -> tuple[float, float]:
    """A SQLite store of ``n`` queued tasks at ``dest`` (copied from the cache, filled
    first if missing); (fill seconds, 0 when cached; copy seconds)."""
    cached = web_fill.CACHE / f"scale-{n}-{web_fill._digest()}.db"
    seconds = 0.0
    if not cached.exists():
        web_fill.CACHE.mkdir(exist_ok=True)
        for old in web_fill.CACHE.glob(f"scale-{n}-*.db*"):
            old.unlink()
        tmp = cached.with_suffix(".filling")
        for leftover in tmp.parent.glob(tmp.name + "*"):
            leftover.unlink()
        seconds = fill(str(tmp), n)
        _checkpoint(tmp)
        tmp.rename(cached)
    started = time.perf_counter()
    shutil.copyfile(cached, dest)
    _fsync(dest)  # else the server's first checkpoint pays for writing the whole copy out
    return seconds, time.perf_counter() - started


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoint(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        db.close()


# -- the claim rate ----------------------------------------------------------------


class Feeder:
    """Keeps ``size`` tasks queued: every FEED_EVERY seconds, submits what is missing."""

    def __init__(self, home: Path, location: str, size: int) -> None:
        self.home, self.location, self.size = home, location, size
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def _run(self) -> None:
        try:
            with Yard(self.home, store=self.location) as y:
                while not self.stopping.wait(FEED_EVERY):
                    missing = self.size - y.counts().get("queued", 0)
                    if missing > 0:
                        y.submit_many([TRUE] * min(missing, FILL_CHUNK))
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(30)
        if self.error is not None:
            raise RuntimeError(f"feeder failed: {self.error!r}") from self.error


@contextlib.contextmanager
def server(home: Path, location: str) -> Iterator[int]:
    env = dict(os.environ, TASKYARD_STORE=location)
    proc = server_process(home, "--slots", "2", env=env)
    try:
        yield proc.pid
    finally:
        stop_server(proc)


def claim_rate(home: Path, location: str, size: int, warm: float,
               window: float) -> tuple[float, float]:
    """(tasks finished per second, server CPU ms per task) over ``window`` seconds
    after ``warm`` (counted from the first task finished), with ``size`` tasks kept
    queued."""
    with Yard(home / "reader", store=location) as y, Feeder(home / "feeder", location, size):
        with server(home / "server", location) as pid:
            first = _succeeded(y)
            common.poll(lambda: _succeeded(y) > first, 120.0, "a first task finished")
            time.sleep(warm)  # the measured server runs; nothing here to wait on
            done0, cpu0, t0 = _succeeded(y), common.cpu_seconds(pid), time.monotonic()
            time.sleep(window)
            done1, cpu1, t1 = _succeeded(y), common.cpu_seconds(pid), time.monotonic()
    finished = done1 - done0
    if finished <= 0:
        log = (home / "server" / "server.log").read_text(errors="replace").splitlines()
        raise RuntimeError(f"no task finished in {window:g} s with {size:,} queued; server"
                           " log ends: " + " | ".join(log[-8:]))
    return finished / (t1 - t0), (cpu1 - cpu0) / finished * 1000


def _succeeded(y: Yard) -> int:
    return int(y.counts().get("succeeded", 0))


def list_ms(home: Path, location: str, samples: int) -> float:
    with Yard(home, store=location) as y:
        for _ in range(3):
            y.list(status="queued", limit=50)
        took = []
        for _ in range(samples):
            started = time.perf_counter()
            page = y.list(status="queued", limit=50)
            took.append((time.perf_counter() - started) * 1000)
        if len(page) != 50:
            raise RuntimeError(f"list(status='queued', limit=50) gave {len(page)} tasks")
    return common.median(took)


def _rates(s: Section, label: str, home: Path, big: str, small: str, n: int,
           timing: tuple[float, float], rounds: int) -> None:
    """Claim rates at both sizes, alternated ``rounds`` times (load that drifts hits
    both alike); the ratio is the median of each round's."""
    warm, window = timing
    got: dict[str, list[float]] = {"rate small": [], "rate big": [], "cpu small": [],
                                   "cpu big": []}
    for i in range(rounds):
        for size, key, location in ((SMALL, "small", small), (n, "big", big)):
            rate, cpu = claim_rate(home / f"{key}{i}", location, size, warm, window)
            print(f"    {label}, {size:,} queued, round {i + 1}: {rate:.0f} tasks/s, server"
                  f" CPU {cpu:.3f} ms/task", file=sys.stderr, flush=True)
            got[f"rate {key}"].append(rate)
            got[f"cpu {key}"].append(cpu)
    for size, key in ((SMALL, "small"), (n, "big")):
        s.add(f"{label}: claim rate, {size:,} queued", common.median(got[f"rate {key}"]),
              "tasks/s", f"server CPU {common.median(got[f'cpu {key}']):.3f} ms/task;"
              f" {common.spread(got[f'rate {key}'])}")
    ratio, spread = common.paired(got, "rate big", "rate small")
    s.ratio(f"{label}: rate {n // 1000:,}k / {SMALL // 1000}k queued", ratio, ">= 0.8", spread)
    ratio, spread = common.paired(got, "cpu big", "cpu small")
    s.ratio(f"{label}: server CPU/task {n // 1000:,}k / {SMALL // 1000}k queued", ratio, "",
            spread)
    page = list_ms(home / "lister", big, 30)
    s.add(f"{label}: Yard.list(status='queued', limit=50), {n:,} queued", page, "ms")
    s.ratio(f"{label}: list queued page / {LIST_MS:.0f} ms", page / LIST_MS, "<= 1")


# -- bytes per finished task ----------------------------------------------------------


def run_all(home: Path, location: str, k: int) -> None:
    fill(location, k)
    with Yard(home / "reader", store=location) as y, server(home / "server", location):
        common.poll(lambda: y.counts().get("succeeded", 0) >= k, 60 + k / 10, f"{k} tasks")


def sqlite_bytes(s: Section, home: Path, k: int) -> None:
    path = home / "size.db"
    open_store(str(path)).close()
    _checkpoint(path)
    before, pages0 = path.stat().st_size, _dbstat(path)
    run_all(home, str(path), k)
    _checkpoint(path)
    after, pages1 = path.stat().st_size, _dbstat(path)
    s.add(f"sqlite: store bytes per finished `true` task ({k:,})", (after - before) / k, "B")
    s.ratio("sqlite: bytes per finished task / 1 KiB", (after - before) / k / KIB, "<= 1")
    grown = {name: pages1.get(name, 0) - pages0.get(name, 0) for name in pages1}
    parts = sorted(((v, name) for name, v in grown.items() if v > 0), reverse=True)
    s.notes.append("sqlite bytes per task by table/index (dbstat pages): " + ", ".join(
        f"{name} {v / k:.0f}" for v, name in parts))


def _dbstat(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {str(n): int(b) for n, b in
                db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()}
    finally:
        db.close()


def postgres_bytes(s: Section, home: Path, k: int) -> None:
    import psycopg

    with postgres_schema(DSN, "benchsize") as url:
        open_store(url).close()
        with psycopg.connect(url, autocommit=True) as conn:
            before = _pg_sizes(conn)
            run_all(home, url, k)
            written = _pg_sizes(conn)
            conn.execute("VACUUM FULL")
            compact = _pg_sizes(conn)
    for label, sizes in (("as written", written), ("after VACUUM FULL", compact)):
        grown = {t: sizes[t] - before.get(t, 0) for t in sizes}
        total = sum(grown.values()) / k
        s.add(f"postgres: bytes per finished task, {label} ({k:,})", total, "B")
        parts = sorted(((v, t) for t, v in grown.items() if v > 0), reverse=True)
        s.notes.append(f"postgres bytes per task {label}, by table with its indexes: "
                       + ", ".join(f"{t} {v / k:.0f}" for v, t in parts))
    s.ratio("postgres: bytes per finished task (VACUUM FULL) / 1 KiB",
            sum(compact[t] - before.get(t, 0) for t in compact) / k / KIB, "<= 1")


def _settle(url: str) -> float:
    """After a bulk load, what a store in service has had done: the kept counts folded (a
    server does it at its heartbeats; until then every count sums a million deltas) and a
    VACUUM ANALYZE (else autovacuum's insert trigger runs one over the fresh million rows
    during the measurement); seconds taken."""
    import psycopg

    started = time.perf_counter()
    store = open_store(url)
    try:
        store.fold_counts()  # type: ignore[union-attr]
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _pg_sizes(conn: object) -> dict[str, int]:
    cur = conn.execute(  # type: ignore[attr-defined]
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace")
    return {str(t): int(b) for t, b in cur.fetchall()}


# -- the run -----------------------------------------------------------------------


def sqlite_part(s: Section, tmp: Path, n: int, timing: tuple[float, float],
                rounds: int) -> None:
    big = tmp / "big.db"
    seconds, copy = sqlite_filled(n, big)
    s.notes.append(f"sqlite: {n:,} queued tasks filled by submit_many in {seconds:.0f} s"
                   f" (0: cached in bench/.cache), copied in {copy:.1f} s; untimed")
    small = tmp / "small.db"
    fill(str(small), SMALL)
    _rates(s, "sqlite", tmp / "sqlite", str(big), str(small), n, timing, rounds)


def postgres_part(s: Section, tmp: Path, n: int, timing: tuple[float, float],
                  rounds: int) -> None:
    with postgres_schema(DSN, "benchbig") as big, postgres_schema(DSN, "benchsmall") as small:
        seconds = fill(big, n)
        settle = _settle(big)
        s.notes.append(f"postgres: {n:,} queued tasks filled by submit_many in {seconds:.0f} s,"
                       f" then counts folded and VACUUM ANALYZE in {settle:.0f} s; untimed")
        fill(small, SMALL)
        _settle(small)
        _rates(s, "postgres", tmp / "pg", big, small, n, timing, rounds)


def run(quick: bool, repeat: int, pg: bool = True, size: int | None = None,
        sqlite: bool = True) -> Section:
    n = size or (100_000 if quick else 1_000_000)
    timing = (3.0, 8.0) if quick else (10.0, 20.0)
    k = 1_000 if quick else 2_000
    rounds = max(1, min(repeat, 3))
    s = Section(f"scale: {SMALL:,} vs {n:,} queued `true` tasks, 2 slots; store bytes per task")
    s.notes.append(f"claim rate: tasks finished per second over {timing[1]:g} s, from"
                   f" {timing[0]:g} s after a server's first task finished, the queue kept at"
                   f" its size; {rounds} round(s), the sizes alternated")
    with common.tempdir("scale") as tmp:
        if sqlite:
            sqlite_bytes(s, tmp / "sqlite-size", k)
            sqlite_part(s, tmp, n, timing, rounds)
        if pg:
            try:
                postgres_bytes(s, tmp / "pg-size", k)
                postgres_part(s, tmp, n, timing, rounds)
            except Exception as exc:  # no PostgreSQL here: the SQLite numbers stand alone
                s.notes.append(f"PostgreSQL part failed: {type(exc).__name__}: {exc}")
    return s


if __name__ == "__main__":
    chosen = int(sys.argv[sys.argv.index("--size") + 1]) if "--size" in sys.argv else None
    rounds = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    print(common.render(run("--quick" in sys.argv, rounds, "--no-pg" not in sys.argv, chosen,
                            "--no-sqlite" not in sys.argv)))
