"""What a memory limit costs the server per task: its CPU time (utime + stime, from
/proc) while it runs N ``true`` tasks, with no limit (posix_spawn), with a memory limit
as RLIMIT_AS (``memory_cgroup = off``: fork + exec) and as a cgroup per attempt
(``auto``: fork + exec + mkdir, two writes, a read or two, rmdir). CPU time, not wall
time: the machine is shared.

    .venv/bin/python bench/experiments/memory_cgroup_cost.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from taskyard import Status, Yard
from taskyard.testing import server_process, stop_server, wait_for

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def measure(n: int, cgroup: str, limits: dict[str, int | float | str] | None) -> float:
    with tempfile.TemporaryDirectory() as top:
        home = Path(top) / "home"
        home.mkdir()
        (home / "taskyard.toml").write_text(f'[server]\nmemory_cgroup = "{cgroup}"\n')
        proc = server_process(home, "--slots", "2")
        try:
            with Yard(home) as y:
                time.sleep(1.0)  # let start-up CPU settle before the first reading
                before = _cpu(proc.pid)
                ids = [y.submit(["true"], limits=limits).id for _ in range(n)]
                wait_for(lambda: not y.list(status=["queued", "running"]), timeout=600,
                         interval=0.2)
                assert all(y.get(i).status is Status.SUCCEEDED for i in ids)
                return (_cpu(proc.pid) - before) / n * 1000
        finally:
            stop_server(proc)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    cases: list[tuple[str, str, dict[str, int | float | str] | None]] = [
        ("no limit (posix_spawn)", "auto", None),
        ("memory 256M as RLIMIT_AS", "off", {"memory": "256M"}),
        ("memory 256M as a cgroup", "auto", {"memory": "256M"})]
    for label, cgroup, limits in cases:
        print(f"{label:28} {measure(n, cgroup, limits):6.2f} ms server CPU per task")


if __name__ == "__main__":
    main()
