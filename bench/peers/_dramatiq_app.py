"""dramatiq broker and no-op actor for dramatiq_bench.py; the workers import it with
``dramatiq peers._dramatiq_app``. Redis URL and queue come from ``TASKYARD_PEER_DRAMATIQ_BROKER``
and ``TASKYARD_PEER_QUEUE``; default middleware, no results backend."""

from __future__ import annotations

import os

import dramatiq  # type: ignore[import-not-found, unused-ignore]
from dramatiq.brokers.redis import RedisBroker  # type: ignore[import-not-found, unused-ignore]

from peers._probe import probe

URL = os.environ["TASKYARD_PEER_DRAMATIQ_BROKER"]
QUEUE = os.environ["TASKYARD_PEER_QUEUE"]
broker = RedisBroker(url=URL)  # type: ignore[no-untyped-call, unused-ignore]
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)  # type: ignore[untyped-decorator, misc, unused-ignore]
def noop() -> None:
    probe()
