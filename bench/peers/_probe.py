"""What every no-op task calls: one fixed-width line with ``time.time()`` appended to the run's
probe file (``TASKYARD_PEER_PROBE``) by a single ``O_APPEND`` write. Kept tiny (``os`` and
``time`` only) so that importing it in a worker costs next to nothing."""

from __future__ import annotations

import os
import time

PROBE_ENV = "TASKYARD_PEER_PROBE"
LINE = 18  # len(b"%17.6f\n" % time.time()), fixed until the year 2286

_fd: int | None = None


def probe() -> None:
    """Record that a task ran: one 18-byte ``O_APPEND`` write of ``time.time()``."""
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[PROBE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(_fd, b"%17.6f\n" % time.time())
