"""Async function tasks that share a worker (``async_concurrency`` above 1).

Such a worker runs several ``async def`` tasks on its event loop at once, so the
server cannot signal one of them through the worker's process group: a kill or
a timeout becomes a ``cancel`` message (the task's coroutine is cancelled),
pause and resume become ``pause``/``resume`` (its coroutine is held at its next
step, see aio.py). A task that does not end within ``kill_grace`` of its cancel
(it swallowed the ``CancelledError``) is ended with its worker: SIGKILL to the
worker's group, which ends every task on it (each recorded as its worker died).

Their output comes through the worker's report pipe (``{"out": ...}`` lines),
not its stdout and stderr pipes, which several tasks share: the run's streams
are keyed by the pseudo descriptors below.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..lifecycle import Reason, Status
from ..store.base import Outcome
from .pool import FunctionRun

STDOUT, STDERR = -1, -2  #: keys of a shared run's streams (not descriptors)


@dataclass(eq=False)
class SharedRun(FunctionRun):
    """An async task on a worker that may run others at the same time."""

    tell: Callable[[dict[str, Any]], None] | None = None  #: a message to its worker

    def signal_group(self, sig: int) -> None:
        if self.returncode is not None or self.tell is None:
            return
        key = [self.task_id, self.epoch]
        if sig == signal.SIGSTOP:
            self.tell({"pause": key})
        elif sig == signal.SIGCONT:
            self.tell({"resume": key})
        elif sig == signal.SIGKILL:  # the escalation: its worker ends, with all it runs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        else:
            self.tell({"cancel": key})

    def kill(self, sig: int, reason: Reason, *, escalate_at: float | None) -> None:
        """Cancel its coroutine (paused or not); SIGKILL (or no end within the grace)
        ends its worker."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.signal_group(sig)
        self.paused = False
        if escalate_at is not None and sig != signal.SIGKILL:
            self.kill_deadline = escalate_at

    def _reported(self) -> Outcome:
        report = self.report
        if report is None or not report.get("cancelled") or self.stop_reason is None:
            return super()._reported()
        timed_out = self.stop_reason is Reason.TIMEOUT
        error = (f"ran past its timeout of {self.claim.timeout:g}s"
                 if timed_out and self.claim.timeout else None)
        return Outcome(self.task_id, self.epoch, Status.FAILED if timed_out else Status.STOPPED,
                       self.stop_reason, error=error)


def output_of(message: dict[str, Any]) -> tuple[int, bytes]:
    """The stream key and bytes of an ``{"out": ...}`` message."""
    key = STDERR if message.get("stream") == "stderr" else STDOUT
    return key, str(message.get("data", "")).encode("utf-8", "backslashreplace")
