"""The server's slots fit its file descriptor limit."""

from __future__ import annotations

import pytest

from taskyard.server import procs


@pytest.mark.parametrize(("limit", "slots", "expected"), [
    (1024, 8, 8),        # plenty: unchanged
    (96, 40, 10),        # (96 - 32) // 6
    (40, 4, 1),          # never below one
    (-1, 500, 500),      # RLIM_INFINITY
])
def test_slots_are_capped_to_what_the_limit_holds(monkeypatch: pytest.MonkeyPatch, limit: int,
                                                  slots: int, expected: int) -> None:
    monkeypatch.setattr(procs, "fd_limit", lambda: limit)
    assert procs.slots_within_fd_limit(slots) == expected


def test_a_worker_pool_needs_more_per_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procs, "fd_limit", lambda: 96)
    assert procs.slots_within_fd_limit(40, workers=True) == (96 - 32) // 11


def test_free_descriptors_are_checked_without_keeping_any() -> None:
    import os

    before = len(os.listdir("/proc/self/fd"))
    assert procs.fds_free(6)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_limit_too_low_for_one_task_says_so(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(procs, "fd_limit", lambda: 16)
    assert procs.slots_within_fd_limit(4) == 1
    assert "too low for even one task" in caplog.text and "38 or more" in caplog.text
