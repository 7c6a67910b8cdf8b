"""Celery application and no-op task for celery_bench.py; the worker imports it with
``celery -A peers._celery_app``. Broker URL and queue come from ``TASKYARD_PEER_CELERY_BROKER``
and ``TASKYARD_PEER_QUEUE``; results are not stored (no result backend)."""

from __future__ import annotations

import os

from celery import Celery  # type: ignore[import-untyped, import-not-found, unused-ignore]

from peers._probe import probe

app = Celery("taskyard_bench", broker=os.environ["TASKYARD_PEER_CELERY_BROKER"])
app.conf.update(
    task_default_queue=os.environ["TASKYARD_PEER_QUEUE"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


@app.task()  # type: ignore[untyped-decorator, misc, unused-ignore]
def noop() -> None:
    probe()
