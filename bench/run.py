"""Run taskyard's benchmarks and print a table of results with ratios.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--repeat N]

Benchmarks are run on demand, never by the test suite. Each one works in
temporary directories, stops what it started and bounds its own waits; this
runner also bounds the whole run (``--time-limit``) and checks for leftovers.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType

import cli_reads
import common
import functions
import latency
import output
import postgres
import scale
import search
import stats
import submit_time
import throughput
import web
from common import Section

BENCHMARKS: dict[str, Callable[[bool, int], Section]] = {
    "throughput": throughput.run,
    "latency": latency.run,
    "submit": submit_time.run,
    "output": output.run,
    "functions": functions.run,
    "postgres": postgres.run,
    "web": web.run,
    "stats": stats.run,
    "search": search.run,
    "scale": scale.run,
    "clireads": cli_reads.run,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeat", type=int, help="repetitions where a median is taken"
                        " (default 5, 1 with --quick)")
    parser.add_argument("--time-limit", type=float, default=1800.0, metavar="S",
                        help="abort the whole run after S seconds (default 1800)")
    return parser.parse_args(argv)


class TimeLimit(BaseException):
    """Not an Exception: it must end the run, not just the benchmark it interrupts."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeLimit("the run took longer than --time-limit")


def _machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        rev = subprocess.run(["git", "-C", str(common.ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = "?"
    return (f"taskyard {rev}; Python {platform.python_version()}; {platform.system()}"
            f" {platform.release()}; {os.cpu_count()} cpu(s); load average {load}")


def _leftovers() -> str | None:
    """Kill (by pid) and name anything still mentioning a benchmark temp directory."""
    time.sleep(0.2)
    pids = common.pids_mentioning(common.TMP_PREFIX)
    common.kill_pids(pids)
    return f"killed leftover processes {pids}" if pids else None


def _one(name: str, quick: bool, repeat: int) -> Section | None:
    busy = common.cpu_busy()
    started = time.monotonic()
    print(f"... {name} (CPUs {busy:.0%} busy before it)", file=sys.stderr, flush=True)
    try:
        section = BENCHMARKS[name](quick, repeat)
    except Exception:
        traceback.print_exc()
        print(f"!!! {name} failed", file=sys.stderr, flush=True)
        return None
    section.notes.append(f"took {time.monotonic() - started:.1f}s; CPUs {busy:.0%} busy in the"
                         f" second before (other work makes numbers noisier)")
    print(common.render(section) + "\n", flush=True)
    return section


def _summary(sections: dict[str, Section]) -> str:
    lines = ["== summary: goals ==", f"  {'benchmark':<12} {'ratio':<46} {'value':>9}  "
             f"{'goal':<8} verdict"]
    for bench, s in sections.items():
        for r in s.ratios:
            if r.goal:
                lines.append(f"  {bench:<12} {r.name:<46} {r.value:>9.2f}  {r.goal:<8} {r.verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(args.time_limit)))
    print(_machine() + "\n", flush=True)
    sections: dict[str, Section] = {}
    try:
        for name in args.only or list(BENCHMARKS):
            section = _one(name, args.quick, repeat)
            if section is not None:
                sections[name] = section
    finally:
        signal.alarm(0)
        leftover = _leftovers()
        if leftover:
            print(f"!!! {leftover}", file=sys.stderr)
    print(_summary(sections))
    wanted = len(args.only or BENCHMARKS)
    return 0 if len(sections) == wanted else 1


if __name__ == "__main__":
    sys.exit(main())
