"""Inline mode: a Yard that runs what is submitted at once, in the calling process.

``Yard.inline()`` is for users' own tests: ``submit`` and ``submit_function``
return once the task ended, as if a server had claimed and run it. It is one:
it registers as a server instance on the store, claims with the store's own
claim (queues, priorities, tenants, limits on parallelism, ``after`` chains,
mutexes), and records outcomes, output, progress and events through the same
fenced writes (see server/inline.py for how each kind runs). Tasks that are not
due (``delay``, ``run_at``, waiting on unfinished tasks) stay scheduled until
:meth:`InlineYard.run_pending` finds them due.

What needs a second actor while the task runs (kill, pause, signals, config,
graceful stop) works from another thread only: the calling thread is inside the
task. A kill ends a function (an exception raised in its thread at its next
Python instruction) or a command (SIGKILL to its group); pause, resume and
stdin are refused: nothing can hold the caller's thread still.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .api import Yard
from .model import Task
from .store.base import Instance, ServerStore

OWNER_PREFIX = "inline-"


class InlineYard(Yard):
    """A Yard whose submits run their tasks before they return (see the module)."""

    def __init__(self, home: str | Path | None = None, *, store: str | None = None,
                 logger: logging.Logger | None = None) -> None:
        super().__init__(home, store=store, logger=logger)
        from .server import procs

        self.owner = f"{OWNER_PREFIX}{uuid.uuid4().hex[:12]}"
        now = time.time()
        self._store.register(Instance(self.owner, procs.hostname(), procs.boot_id(),
                                      os.getpid(), 1, now, now, None, None))
        self._cwd = self.settings.cwd or os.getcwd()

    def submit(self, *args: Any, **kwargs: Any) -> Task:
        """:meth:`Yard.submit`, then run it (and whatever else became due) here."""
        task = super().submit(*args, **kwargs)
        self.run_pending()
        return self.get(task.id)

    def submit_function(self, *args: Any, **kwargs: Any) -> Task:
        """:meth:`Yard.submit_function`, then run it (and whatever else became due)."""
        task = super().submit_function(*args, **kwargs)
        self.run_pending()
        return self.get(task.id)

    def submit_many(self, *args: Any, **kwargs: Any) -> list[Task]:
        """:meth:`Yard.submit_many`, then run them (and whatever else became due)."""
        tasks = super().submit_many(*args, **kwargs)
        self.run_pending()
        return [self.get(task.id) for task in tasks]

    def restart(self, task_id: int) -> Task:
        task = super().restart(task_id)
        self.run_pending()
        return self.get(task.id)

    def run_pending(self) -> int:
        """Run every task that is due now, one at a time, until none is (retries that
        are due, tasks whose ``after`` succeeded, steps that gave their turn back).
        Returns how many attempts ran."""
        from .server.inline import run

        store = self._store
        ran = 0
        while True:
            self._answer_requests()
            store.promote_due(time.time(), self.owner)
            claims = store.claim(self.owner, 1)
            if not claims:
                return ran
            outcome, output = run(claims[0], self._ctx_store(), self.owner,
                                  self.settings.head_bytes, self.settings.tail_bytes, self._cwd)
            store.finish(self.owner, [outcome], output)
            ran += 1

    def _ctx_store(self) -> Callable[[], ServerStore]:
        """How a task's ctx gets its store: another handle on this one."""
        reopen = getattr(self._store, "reopen", None)
        if reopen is not None:  # a memory store: its data is in this connection
            return reopen  # type: ignore[no-any-return]
        from .store import open_store

        location, synchronous = self.settings.store_location, self.settings.synchronous
        return lambda: open_store(location, synchronous=synchronous)

    def _answer_requests(self) -> None:
        for request in self._store.pending_requests(self.owner):
            self._store.complete_request(
                request.id, "rejected", "it runs inline (Yard.inline()): no server process"
                " runs it to kill or pause; give it a timeout or use ctx.should_stop()")

    def close(self) -> None:
        try:
            self._store.unregister(self.owner, time.time())
        finally:
            super().close()
