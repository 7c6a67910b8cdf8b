"""An experiment, not a benchmark: what one PostgreSQL server's task loop costs per
``true`` task: statements sent (by kind), transactions, the server's CPU and its
PostgreSQL backends' CPU. CPU is the measure to compare designs by on a busy
machine, where wall-clock rates move with the load. Usage::

    .venv/bin/python bench/experiments/pg_round_trips.py [TASKS] [SERVERS]

The server runs with a ``sitecustomize`` that wraps psycopg's ``Cursor.execute``
and ``executemany`` (one round trip each, or one per pipeline sync) and counts
them by their first words; it notes its backends' pids so that their CPU can be
read from ``/proc`` (PostgreSQL on this machine). With PGRT_PYSPY=FILE, ``py-spy`` (on PATH) records the
first server's stacks into FILE (collapsed). Needs TASKYARD_BENCH_PG (or
the default local PostgreSQL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/: common
import common
from taskyard import Yard
from taskyard.testing import postgres_schema, server_process, stop_server

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

SITECUSTOMIZE = r'''
import atexit, collections, json, os
import psycopg

_out = os.environ.get("TASKYARD_SQL_COUNT")
if _out:
    _counts = collections.Counter()
    _pids = set()

    def _key(query):
        text = query.decode() if isinstance(query, bytes) else str(query)
        words = text.split()
        if not words:
            return "?"
        if words[0].upper() in ("UPDATE", "INSERT", "DELETE") and len(words) > 2:
            target = words[2] if words[0].upper() != "UPDATE" else words[1]
            return f"{words[0].upper()} {target}"
        return " ".join(words[:2])[:40]

    def _note(cur):
        pid = cur.connection.info.backend_pid
        if pid not in _pids:
            _pids.add(pid)
            with open(_out + ".pids", "a") as f:
                f.write(f"{pid}\n")

    _execute = psycopg.Cursor.execute
    _executemany = psycopg.Cursor.executemany

    def execute(self, query, params=None, **kw):
        _counts[_key(query)] += 1
        _note(self)
        return _execute(self, query, params, **kw)

    def executemany(self, query, params_seq, **kw):
        _counts["(many) " + _key(query)] += 1
        _note(self)
        return _executemany(self, query, params_seq, **kw)

    psycopg.Cursor.execute = execute
    psycopg.Cursor.executemany = executemany

    @atexit.register
    def _dump():
        with open(_out, "w") as f:
            json.dump(dict(_counts), f)
'''


def backend_cpu(pids_file: Path) -> dict[int, float]:
    found = {}
    if pids_file.exists():
        for line in pids_file.read_text().split():
            try:
                found[int(line)] = common.cpu_seconds(int(line))
            except OSError:
                pass
    return found


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with common.tempdir("pgrt") as tmp, postgres_schema(DSN, "bench") as dsn:
        site = tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        with Yard(tmp / "client", store=dsn) as y:
            for _ in range(n):
                y.submit(["true"])
            outs = [tmp / f"counts{i}.json" for i in range(count)]
            procs = []
            for i in range(count):
                env = dict(os.environ, TASKYARD_STORE=dsn, TASKYARD_SQL_COUNT=str(outs[i]),
                           PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
                procs.append(server_process(tmp / f"s{i}", "--slots", "2", env=env))
            spy = None
            if os.environ.get("PGRT_PYSPY"):  # a profile of the first server: collapsed stacks
                spy = subprocess.Popen(["py-spy", "record", "-p", str(procs[0].pid), "-r", "500",
                                        "--idle", "-f", "raw", "-o", os.environ["PGRT_PYSPY"]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu0 = [common.cpu_seconds(p.pid) for p in procs]
            be0 = [backend_cpu(Path(str(o) + ".pids")) for o in outs]
            t0 = time.time()
            tasks = common.all_finished(y, 60.0 + n / 10)
            wall = time.time() - t0
            cpu1 = [common.cpu_seconds(p.pid) for p in procs]
            be1 = [backend_cpu(Path(str(o) + ".pids")) for o in outs]
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            for p in procs:
                stop_server(p)
        common.check_succeeded(tasks, n)
        first = min(t.started_at or 0 for t in tasks)
        last = max(t.finished_at or 0 for t in tasks)
        counts: dict[str, int] = {}
        for o in outs:
            for k, v in json.loads(o.read_text()).items():
                counts[k] = counts.get(k, 0) + v
    server_ms = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / n * 1000
    backend_ms = sum(v - b0.get(pid, 0.0) for b0, b1 in zip(be0, be1, strict=True)
                     for pid, v in b1.items()) / n * 1000
    print(f"{n} `true` tasks, {count} server(s) of 2 slots; load {os.getloadavg()[0]:.1f}")
    print(f"  rate (first start to last finish)  {n / (last - first):8.0f} tasks/s"
          f"  (wall until all seen {wall:.1f} s)")
    print(f"  server CPU per task                {server_ms:8.3f} ms")
    print(f"  PostgreSQL backends' CPU per task  {backend_ms:8.3f} ms")
    total = sum(counts.values())
    print(f"  statements per task                {total / n:8.2f}  (whole run, incl. startup)")
    for key, value in sorted(counts.items(), key=lambda kv: -kv[1]):
        if value / n >= 0.01:
            print(f"    {value / n:6.2f}  {key}")


if __name__ == "__main__":
    main()
