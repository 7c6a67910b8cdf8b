"""Run every peer benchmark in its own subprocess and collect the JSON lines.

    .venv/bin/python bench/peers/run_all.py [--tasks 5000] [--only huey --only rq] [--json]

From another benchmark module (with ``bench/`` on ``sys.path``)::

    from peers.run_all import measure
    results = measure(5000)   # one dict per peer; {"peer": ..., "error": ...} if unavailable

Each peer gets a wall-clock limit (180 s, RQ 300 s: its forking worker does ~50 tasks/s here);
the peer script is told to give up 30 s before it, and is SIGTERMed (then SIGKILLed) at it.
Afterwards any process still carrying this run's marker variable is killed by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the `peers` package importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from peers._common import RUN_ENV

PEERS_DIR = Path(__file__).resolve().parent
#: peer -> (script, the distributions it imports, extra arguments)
PEERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "huey": ("huey_bench.py", ("huey",), ()),
    # huey without an fsync per commit: the durability of taskyard's default
    # (synchronous=normal: a commit survives a crash of any process, not a power loss)
    "huey-nofsync": ("huey_bench.py", ("huey",), ("--fsync", "off")),
    "rq": ("rq_bench.py", ("rq", "redis"), ()),
    "celery": ("celery_bench.py", ("celery", "redis"), ()),
    "dramatiq": ("dramatiq_bench.py", ("dramatiq", "redis"), ()),
    "procrastinate": ("procrastinate_bench.py", ("procrastinate", "psycopg"), ()),
}
DEFAULT_TIMEOUT = 180.0
TIMEOUTS = {"rq": 300.0}
INSTALL_HINT = "pip install -e '.[bench]'"


def _missing(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _kill_leftovers(run_id: str) -> list[int]:
    """Kill (by pid) every process whose environment carries this run's marker."""
    marker = f"{RUN_ENV}={run_id}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the peer script (it then stops its workers), SIGKILL its group after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()


def _parse(peer: str, stdout: str, stderr: str, returncode: int | None) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict):
                return found
    tail = (stderr.strip() or stdout.strip())[-800:]
    return {"peer": peer, "error": f"no JSON line from the peer script (exit {returncode}): {tail}"}


def run_peer(peer: str, tasks: int = 5000, timeout: float | None = None) -> dict[str, Any]:
    """Run one peer script in a subprocess; always return one dict (with "error" on failure)."""
    script, modules, extra = PEERS[peer]
    if missing := _missing(modules):
        return {
            "peer": peer,
            "tasks": tasks,
            "error": f"not installed: {', '.join(missing)} (install with {INSTALL_HINT})",
        }
    limit = timeout if timeout is not None else TIMEOUTS.get(peer, DEFAULT_TIMEOUT)
    run_id = uuid.uuid4().hex[:12]
    argv = [
        sys.executable,
        str(PEERS_DIR / script),
        "--tasks",
        str(tasks),
        "--timeout",
        str(max(limit - 30, 10)),
        *extra,
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, RUN_ENV: run_id},
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        stdout, stderr = _stop(proc)
    finally:
        if proc.poll() is None:  # interrupted while waiting: still clean up
            _stop(proc)
        leftovers = _kill_leftovers(run_id)
    result = _parse(peer, stdout, stderr, proc.returncode)
    result["peer"] = peer  # a variant (huey-nofsync) is named by its key
    if timed_out:
        result = {
            "peer": peer,
            "tasks": tasks,
            "error": f"no result within {limit:.0f} s (script said: {result.get('error', result)})",
        }
    if leftovers:
        result["leftovers_killed"] = leftovers
    return result


def measure(
    tasks: int = 5000, peers: Sequence[str] | None = None, timeout: float | None = None
) -> list[dict[str, Any]]:
    """Measure each peer (all by default) one after the other; one dict per peer, in the
    JSON-line format of the peer scripts (``peer``, ``tasks``, ``seconds``, ``per_second``,
    ``workers``, ``note``, ...) or ``{"peer": ..., "error": ...}``."""
    return [run_peer(peer, tasks, timeout) for peer in (peers or list(PEERS))]


def table(results: Sequence[dict[str, Any]]) -> str:
    head = ("peer", "tasks/s", "seconds", "from launch/s", "workers", "CPU busy before", "config")
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append((str(r.get("peer")), "-", "-", "-", "-", "-", f"ERROR: {r['error']}"))
            continue
        rows.append(
            (
                str(r["peer"]),
                f"{r['per_second']:,.0f}",
                f"{r['seconds']:.2f}",
                f"{r.get('per_second_from_launch', 0):,.0f}",
                str(r["workers"]),
                f"{r.get('cpu_busy_before', 0):.0%}",
                str(r.get("config", "")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in (1, 2, 3, 4) else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Throughput of peer task queues, no-op tasks.")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--only", action="append", choices=list(PEERS), help="repeatable")
    parser.add_argument("--timeout", type=float, help="seconds per peer (default 180, RQ 300)")
    parser.add_argument("--json", action="store_true", help="also print each JSON line")
    args = parser.parse_args(argv)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{args.tasks} no-op tasks per peer; {os.cpu_count()} CPUs; load average {load}", flush=True
    )
    results = []
    for peer in args.only or list(PEERS):
        result = run_peer(peer, args.tasks, args.timeout)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            status = result.get("error") or f"{result['per_second']:,.0f} tasks/s"
            print(f"  {peer}: {status}", flush=True)
    print(table(results))
    return 1 if all("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
