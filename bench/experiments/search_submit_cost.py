"""What the schema-25 search triggers cost a bulk submit, for callgrind: submit N tasks
(``bench/bulk_submit.py``'s: ``echo I``, a name, two metadata keys) into a fresh SQLite
store with some triggers dropped. Instructions per task are the difference of two
sizes, the process's start and imports cancelling out:

    for n in 1000 6000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/experiments/search_submit_cost.py VARIANT $n 2>&1 \\
        | grep -o 'Collected : [0-9]*'; done     # (b - a) / 5000

VARIANT: ``25`` (all), ``24`` (no metadata or text trigger), ``nometa``, ``notext``.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from taskyard import ops
from taskyard.model import TaskSpec
from taskyard.store.sqlite import SQLiteStore

META = ["DROP TRIGGER tasks_meta_insert", "DROP TRIGGER tasks_meta_insert_nested"]
TEXT = ["DROP TRIGGER tasks_text_insert"]
DROPS = {"25": [], "24": META + TEXT, "nometa": META, "notext": TEXT}


def main(variant: str, n: int) -> None:
    specs = [TaskSpec(argv=("echo", str(i)), name=f"job-{i}", cwd="/tmp",
                      meta={"batch": "bench", "i": i}) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "taskyard.db"
        SQLiteStore(path).close()
        db = sqlite3.connect(path)
        for statement in DROPS[variant]:
            db.execute(statement)
        db.commit()
        db.close()
        store = SQLiteStore(path)
        ops.submit_many(store, specs)
        store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
