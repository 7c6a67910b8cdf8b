"""What each attempt used: CPU time (user, system) and peak memory, from the reaped
process group leader (a command) or around the call (a function)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from taskyard import Status, Yard
from taskyard.testing import cli, running_server

BURN = ("import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
        "block = bytearray(60 * 1024 * 1024)\n")


def test_a_command_attempt_records_its_cpu_and_peak_memory(home: Path) -> None:
    with running_server(home, "--slots", "1"), Yard(home) as y:
        # the work happens in a child the leader waits for: counted too
        task = y.submit(["sh", "-c", f"{sys.executable} -c '{BURN}'"])
        done = y.wait(task.id, timeout=60)
        assert done is not None and done.status is Status.SUCCEEDED
        (attempt,) = y.attempts(task.id)
        assert attempt.cpu_user is not None and attempt.cpu_system is not None
        assert attempt.cpu_user + attempt.cpu_system >= 0.25, attempt  # it burnt 0.3 s
        assert attempt.max_rss_kib is not None and attempt.max_rss_kib >= 60 * 1024, attempt
        shown = json.loads(cli(home, "show", str(task.id), "--json").stdout)
        assert shown["attempts"][0]["usage"]["max_rss_kib"] == attempt.max_rss_kib
        assert "MiB peak" in cli(home, "show", str(task.id)).stdout.decode()
        killed = y.submit(["sleep", "60"])
        y.wait(killed.id, timeout=1)
        y.kill(killed.id, "KILL")
        assert y.wait(killed.id, timeout=30) is not None
        assert y.attempts(killed.id)[0].cpu_user is not None, "a killed one too"
