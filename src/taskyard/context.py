"""What code running inside a function task can do: ``ctx``.

A function that takes a first parameter named ``ctx`` (or annotated
:class:`Context`) gets one. Every write is fenced by the attempt's epoch: once
the attempt is no longer current (killed, timed out, taken over after a crash)
its writes raise :class:`~taskyard.errors.StaleAttempt` and change nothing.
Reads of operator input (config, signals, a graceful stop) are cached for
``POLL`` seconds, so calling them in a tight loop costs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .model import JSON

if TYPE_CHECKING:
    from .store.base import ClientStore

POLL = 0.2  #: seconds a read of config, signals or the stop flag is reused
PROGRESS_EVERY = 0.25  #: at most one progress write per this many seconds (the last is kept)


class Context:
    """Handed to a running function: progress, signals, live config, checkpoints."""

    messages_tail = 10000  #: the attempt's messages bound (the server's messages_tail)
    #: the task's status file (status files: ``status_dir``), as TASKYARD_STATUS_FILE is
    #: to a command; None when there are none
    status_file: str | None = None

    def __init__(self, store: Callable[[], ClientStore], task_id: int, attempt: int,
                 deadline: float | None = None) -> None:
        self._store_factory = store
        self._store: ClientStore | None = None
        self.task_id = task_id
        self.attempt = attempt
        self.deadline = deadline  #: unix time its timeout ends it, or None
        self._meta: dict[str, JSON] | None = None
        self._progress: tuple[float, float | None, str | None] | None = None
        self._progress_written = 0.0
        self._progress_dirty = False
        self._polled = 0.0
        self._config_version = -1
        self._config: dict[str, JSON] = {}
        self._stop = False
        self._pending_signals = 0
        self._on_config: list[Callable[[dict[str, JSON]], None]] = []
        self._state_loaded = False
        self._state: JSON = None

    @property
    def store(self) -> ClientStore:
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    # -- progress ---------------------------------------------------------------------

    def progress(self, done: float, total: float | None = None,
                 message: str | None = None) -> None:
        """Report progress; writes are throttled (the latest value always lands)."""
        from .validate import check_progress

        check_progress(done, total, message)
        self._progress = (float(done), None if total is None else float(total), message)
        self._progress_dirty = True
        now = time.monotonic()
        if now - self._progress_written >= PROGRESS_EVERY:
            self.flush()
        self._poll(now)

    def flush(self) -> None:
        """Write the latest progress now (done when the function returns)."""
        if self._progress_dirty and self._progress is not None:
            self._progress_dirty = False
            self._progress_written = time.monotonic()
            self.store.set_progress(self.task_id, self.attempt, *self._progress)

    def emit(self, value: JSON) -> int:
        """Emit a message: a JSON value (at most 1 MiB), stored at once, numbered from 0
        per attempt (the number is returned); readers see it while the task runs."""
        return self.store.emit_messages(self.task_id, self.attempt, [value],
                                        tail=self.messages_tail)

    # -- operator input -----------------------------------------------------------------

    def _poll(self, now: float | None = None, force: bool = False) -> None:
        now = time.monotonic() if now is None else now
        if not force and now - self._polled < POLL:
            return
        self._polled = now
        version, stop_asked, pending, _ = self.store.poll_task(self.task_id)
        self._stop = stop_asked == self.attempt
        self._pending_signals = pending
        if version != self._config_version:
            self._config_version, self._config = self.store.get_config(self.task_id)
            for callback in list(self._on_config):
                callback(dict(self._config))

    @property
    def config(self) -> dict[str, JSON]:
        """The live config (a copy): operators change it while the task runs."""
        self._poll()
        return dict(self._config)

    def on_config(self, callback: Callable[[dict[str, JSON]], None]) -> None:
        """Call ``callback(config)`` when a change is seen (at the task's next ctx call)."""
        if not callable(callback):  # found now, not at the next config change
            from .errors import InvalidInput

            raise InvalidInput("on_config takes a function of the new config",
                               field="callback")
        self._on_config.append(callback)

    def signals(self, clear: bool = True) -> list[dict[str, JSON]]:
        """Custom signals sent with ``taskyard signal`` not yet acknowledged (id, name,
        data, sent_at); ``clear`` acknowledges them."""
        self._poll()
        if not self._pending_signals and not clear:
            return []
        found = self.store.signals(self.task_id, self.attempt, clear=clear)
        if clear:
            self._pending_signals = 0
        return found

    def report_error(self, message: str) -> None:
        """The task's own verdict: it failed, whatever it returns (reason ``reported``
        with ``message`` if it returns normally; the message is kept on the attempt)."""
        from .ops import report

        report(self.store, self.task_id, self.attempt, False, message)

    def report_ok(self) -> None:
        """Take back an earlier report_error: this attempt's last report counts."""
        from .ops import report

        report(self.store, self.task_id, self.attempt, True, None)

    def should_stop(self) -> bool:
        """True once a graceful stop was asked (``taskyard kill ID --graceful``): clean
        up and return."""
        self._poll()
        return self._stop

    # -- metadata and state -----------------------------------------------------------------

    @property
    def meta(self) -> dict[str, JSON]:
        """The task's metadata (a copy, read once; ``update_meta`` changes it)."""
        if self._meta is None:
            self._meta = dict(self.store.get(self.task_id).meta)
        return dict(self._meta)

    def update_meta(self, patch: dict[str, JSON]) -> dict[str, JSON]:
        """Merge-patch the task's metadata (RFC 7396), fenced by this attempt."""
        from .validate import MAX_META_BYTES

        task = self.store.patch_meta(self.task_id, patch, MAX_META_BYTES, epoch=self.attempt)
        self._meta = dict(task.meta)
        return dict(self._meta)

    @property
    def state(self) -> JSON:
        """The last checkpoint (of this or an earlier attempt), or None."""
        if not self._state_loaded:
            text, _ = self.store.load_state(self.task_id)
            self._state = json.loads(text) if text is not None else None
            self._state_loaded = True
        return self._state

    def checkpoint(self, state: JSON) -> None:
        """Save ``state`` (JSON); a later attempt starts with it as ``ctx.state``."""
        from .validate import check_json

        self.store.checkpoint(self.task_id, self.attempt, check_json(state, "state"))
        self._state, self._state_loaded = json.loads(json.dumps(state)), True

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __repr__(self) -> str:
        return f"Context(task_id={self.task_id}, attempt={self.attempt})"


def wants_context(fn: Callable[..., Any]) -> bool:
    """Whether ``fn``'s first parameter is ``ctx`` (or annotated Context)."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    first = params[0]
    return first.name == "ctx" or first.annotation in (Context, "Context", "taskyard.Context")
