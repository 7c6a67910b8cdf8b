"""cli reads: the wall time of a whole ``taskyard ls --limit 50``, ``show ID`` and
``logs ID`` run on a SQLite store of 100,000 tasks (issue 17, goal 6: each under
100 ms), measured as the submit benchmark does (hyperfine -N when installed, a
private PYTHONPYCACHEPREFIX so that bytecode is cached as an installed package has it).

The store is ``web_fill``'s mix (cached in ``bench/.cache``); ``show`` is of its
newest task (ended: its attempt and 3 events), ``logs`` of a running task given
64 KiB of output through the store's server half (untimed).

    .venv/bin/python bench/cli_reads.py [--size N]
"""

from __future__ import annotations

import shutil
import sys

import common
import submit_time
import web_fill
from common import Section
from taskyard.store import open_store
from taskyard.store.base import OutputWrite

GOAL_MS = 100.0
OUTPUT = b"".join(b"line %05d of some task output\n" % i for i in range(2200))[:65536]


def _with_output(location: str, task_id: int) -> None:
    store = open_store(location)
    try:
        store.append_output(web_fill.OWNER, [OutputWrite(task_id, 1, "stdout", 0, OUTPUT,
                                                         len(OUTPUT), 0, len(OUTPUT))])
    finally:
        store.close()


def run(quick: bool, repeat: int, size: int = 100_000) -> Section:
    runs = 10 if quick else 30
    s = Section(f"cli reads: whole runs on a {size:,}-task SQLite store (ms, lower is better)")
    with common.tempdir("clireads") as tmp:
        filled = web_fill.sqlite_store(size, tmp / "taskyard.db")
        _with_output(filled.location, filled.ids["running"])
        exe = [str(common.VENV_BIN / "taskyard"), "--home", str(tmp / "home"), "--store",
               filled.location]
        commands = {
            "taskyard ls --limit 50": [*exe, "ls", "--limit", "50"],
            "taskyard show ID": [*exe, "show", str(filled.ids["newest"])],
            "taskyard logs ID (64 KiB)": [*exe, "logs", str(filled.ids["running"])],
            submit_time.FLOOR: [str(common.VENV_BIN / "python"), "-c", "pass"],
        }
        env = submit_time._cached_env(tmp)
        found = submit_time._measure(commands, runs, tmp, env)
    tool = "hyperfine -N" if shutil.which("hyperfine") else "subprocess"
    s.notes.append(f"median of {runs} runs via {tool}, 3 warm-up runs each (bytecode cached)")
    for name, ms in found.items():
        s.add(name, ms, "ms")
    for name in list(commands)[:3]:
        s.ratio(f"{name} / {GOAL_MS:.0f} ms", found[name] / GOAL_MS, "<= 1")
    return s


if __name__ == "__main__":
    chosen = int(sys.argv[sys.argv.index("--size") + 1]) if "--size" in sys.argv else 100_000
    print(common.render(run("--quick" in sys.argv, 1, chosen)))

