"""procrastinate application and no-op task for procrastinate_bench.py; the worker imports it
with ``procrastinate --app peers._procrastinate_app.app``. The database comes from
``TASKYARD_PEER_PG_DSN`` (a scratch database made by the benchmark), the queue from
``TASKYARD_PEER_QUEUE``."""

from __future__ import annotations

import os

import procrastinate  # type: ignore[import-not-found, unused-ignore]

from peers._probe import probe

DSN = os.environ["TASKYARD_PEER_PG_DSN"]
QUEUE = os.environ["TASKYARD_PEER_QUEUE"]
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))


@app.task(queue=QUEUE)  # type: ignore[untyped-decorator, misc, unused-ignore]
def noop() -> None:
    probe()
