"""CPU time (``time.process_time``) of ``Yard.list(limit=50)`` and ``Yard.counts`` for
each filter of ``bench/search.py`` on a SQLite store: the query's own work, which a busy
machine's wall clock hides (SQLite runs in the process).

    .venv/bin/python bench/experiments/search_cpu.py STORE.db [HOME]

STORE.db: e.g. a copy of ``bench/.cache/tasks-1000000-*.db`` with every 20th task made a
function task (``search.FUNCTIONS``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import FILTERS
from taskyard import Yard


def _cpu_ms(call: Any, samples: int) -> float:
    call()
    call()
    best = float("inf")
    for _ in range(samples):
        started = time.process_time()
        call()
        best = min(best, time.process_time() - started)
    return best * 1000


def main(store: str, home: str) -> None:
    with Yard(home, store=store) as y:
        print(f"{'filter':40} {'page ms':>8} {'counts ms':>9}  capped")
        for name, kw, _ in FILTERS:
            page = _cpu_ms(lambda kw=kw: y.list(limit=50, **kw), 15)
            counts = _cpu_ms(lambda kw=kw: y.counts(**kw), 5)
            print(f"{name:40} {page:8.2f} {counts:9.2f}  {y.counts(**kw).partial}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/tmp/taskyard-search-cpu")
