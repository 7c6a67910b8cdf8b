from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stray TASKYARD_* variables (from a task running the suite, say) must not leak in."""
    for key in list(os.environ):
        if key.startswith("TASKYARD_"):
            monkeypatch.delenv(key)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    yield path


@pytest.fixture
def busy_cpus() -> Iterator[list[int]]:
    """Keep both CPUs (and one more) saturated for the test: three busy loops, each
    ending by itself after 10 minutes in case nothing stops them, and stopped here by
    pid. For tests that must hold under load, not only on a quiet machine."""
    import signal
    import subprocess
    import sys

    loop = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range((os.cpu_count() or 2) + 1)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
