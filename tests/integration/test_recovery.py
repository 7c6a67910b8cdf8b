"""Who is dead: silent past the lease, or a gone process in our own pid namespace.
A peer in another pid namespace (another container on this host, maybe pid 1 as we
may be) is judged by its heartbeat only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from taskyard.server import procs, recovery
from taskyard.store.base import Instance
from taskyard.store.sqlite import SQLiteStore


def _gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_peers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    host, boot, now = procs.hostname(), procs.boot_id(), time.time()
    gone = _gone_pid()
    peers = {
        "alive": (host, boot, os.getppid(), now),            # a live process, fresh heartbeat
        "gone": (host, boot, gone, now),                     # our namespace, process gone
        "same-pid": (host, boot, os.getpid(), now),          # a predecessor with our pid
        "other-ns": (host, "x/pid:[1]", os.getpid(), now),   # another container: trust its lease
        "other-ns-gone": (host, "x/pid:[1]", gone, now),
        "silent": ("elsewhere", "y", 1, now - 60),           # missed its lease
    }
    for name, (h, b, pid, beat) in peers.items():
        store.register(Instance(name, h, b, pid, 1, beat, beat, None, None))
    dead = recovery.dead_peers(store, "me", host, boot, now, lease=10)
    assert sorted(dead) == ["gone", "same-pid", "silent"]
    assert sorted(i.id for i in store.instances()) == ["alive", "other-ns", "other-ns-gone"]
    store.close()
