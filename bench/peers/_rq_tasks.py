"""The no-op job function of rq_bench.py; RQ workers import it as ``peers._rq_tasks.noop``."""

from __future__ import annotations

from peers._probe import probe


def noop() -> None:
    probe()
