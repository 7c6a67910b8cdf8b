"""huey application and no-op task for huey_bench.py; the consumer imports it as
``peers._huey_app.huey``. The SQLite file comes from ``TASKYARD_PEER_HUEY_DB``;
``TASKYARD_PEER_HUEY_FSYNC`` is huey's ``fsync`` argument: ``default`` (None: SQLite's own
default, here synchronous=FULL, an fsync per commit), ``on`` (FULL) or ``off`` (OFF)."""

from __future__ import annotations

import os

from huey import SqliteHuey  # type: ignore[import-untyped, import-not-found, unused-ignore]

from peers._probe import probe

FSYNC = {"default": None, "on": True, "off": False}[
    os.environ.get("TASKYARD_PEER_HUEY_FSYNC", "default")
]
huey = SqliteHuey("taskyard-bench", filename=os.environ["TASKYARD_PEER_HUEY_DB"], fsync=FSYNC)


@huey.task()  # type: ignore[untyped-decorator, misc, unused-ignore]
def noop() -> None:
    probe()
