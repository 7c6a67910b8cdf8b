"""Parsing limits as users write them, and judging which one stopped a task."""

from __future__ import annotations

import signal

import pytest

from taskyard import limits
from taskyard.errors import InvalidInput
from taskyard.limits import Limits
from taskyard.server.rlimits import judge


@pytest.mark.parametrize(("text", "size"), [
    ("512M", 512 << 20), ("1G", 1 << 30), ("1.5G", 3 << 29), ("100K", 100 << 10),
    ("4096", 4096), ("2GiB", 2 << 30), ("10mb", 10 << 20), (8192, 8192)])
def test_sizes(text: str | int, size: int) -> None:
    assert limits.parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "x", "-1M", "1.2.3G", "10Q", "0", "12 M B", True, 1.5])
def test_bad_sizes_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        limits.parse_size(bad)
    assert caught.value.field == "memory-limit"


def test_cpu_is_whole_seconds_rounded_up_and_counts_are_positive() -> None:
    assert [limits.parse_cpu(v) for v in ("60s", "2m", "1h", 1.2, "0.1s")] == [60, 120, 3600, 2, 1]
    for bad in ("0s", -1, "soon", 0):
        with pytest.raises(InvalidInput):
            limits.parse_cpu(bad)
    assert limits.parse_count("64", "files-limit") == 64
    with pytest.raises(InvalidInput, match="files-limit"):
        limits.parse_count(0, "files-limit")


def test_parse_store_merge_describe() -> None:
    given = limits.parse({"memory": "512M", "cpu": "1m", "files": 64, "procs": None})
    assert given == Limits(memory=512 << 20, cpu=60, files=64)
    assert limits.loads(limits.dumps(given)) == given
    assert limits.dumps(limits.NONE) is None
    assert given.describe() == "memory 512M, cpu 60s, files 64"
    assert limits.merge(Limits(cpu=5), given) == Limits(memory=512 << 20, cpu=5, files=64)
    assert limits.effective(None, None) is None
    with pytest.raises(InvalidInput) as caught:
        limits.parse({"disk": 1}, "limits.")
    assert caught.value.field == "limits.disk"


def test_judging_which_limit_stopped_a_task() -> None:
    both = Limits(memory=1 << 29, cpu=2, files=16)
    assert judge(both, -signal.SIGXCPU, 2.0, b"") == "cpu limit 2s"
    assert judge(both, -signal.SIGKILL, 4.1, b"") == "cpu limit 2s"
    assert judge(both, -signal.SIGKILL, 0.3, b"") is None, "killed by someone else"
    assert judge(both, 128 + signal.SIGXCPU, 2.2, b"") == "cpu limit 2s", "through a shell"
    assert judge(both, 1, 0.1, b"...\nMemoryError\n") == "memory limit 512M"
    assert judge(both, 1, 0.1, b"OSError: [Errno 24] Too many open files") == "files limit 16"
    assert judge(both, 1, 0.1, b"ValueError: nope") is None
    assert judge(Limits(cpu=2), 1, 0.1, b"MemoryError") is None, "no memory limit set"
    # the OOM killer acted in the task's memory cgroup: the memory limit, even where the
    # CPU was used up too (a SIGKILL says nothing of which), and through a shell
    assert judge(both, -signal.SIGKILL, 4.1, b"", oom_killed=True) == "memory limit 512M"
    assert judge(both, 128 + signal.SIGKILL, 0.1, b"", oom_killed=True) == "memory limit 512M"
    assert judge(both, 0, 0.1, b"", oom_killed=True) is None, "a child killed, the task fine"
    assert judge(Limits(cpu=2), -signal.SIGKILL, 0.1, b"", oom_killed=True) is None
