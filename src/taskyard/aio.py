"""Async function tasks in a worker: pausing a coroutine, and whose output is whose.

A worker with ``async_concurrency`` above 1 runs several ``async def`` tasks at once
on its event loop (see worker.py). They share the worker's process, so the
server cannot signal one of them: it sends the worker ``cancel``, ``pause`` and
``resume`` messages instead, and this module carries them out.

- **Pause** (:class:`Pausable`): a coroutine is driven step by step; while its
  gate is closed, the step it is woken for is held back, so none of its code
  runs until it is resumed (what it awaits goes on meanwhile: a sleep ends, a
  socket fills).
- **Output** (:class:`Router`): ``sys.stdout`` and ``sys.stderr`` are routers;
  what a task writes to them goes to the stream of the task whose context
  writes (a :mod:`contextvars` variable, set in the task's own context), sent to
  the server beside its report. What bypasses them (writes to descriptors 1 and
  2 by C code or child processes, ``sys.stdout.buffer``) is nobody's and is
  dropped by the server: the limit of sharing a process.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TextIO

#: The task whose context is running: where its sys.stdout and sys.stderr writes go.
CAPTURE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "taskyard_capture", default=None)


class Capture:
    """One task's two streams, sent as ``{"out": task, "attempt": n, "stream": ...,
    "data": text}`` messages through ``send``."""

    def __init__(self, task_id: int, attempt: int,
                 send: Callable[[dict[str, Any]], None]) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.send = send

    def write(self, stream: str, text: str) -> None:
        if text:
            self.send({"out": self.task_id, "attempt": self.attempt, "stream": stream,
                       "data": text})


class Router:
    """A text stream that writes to the running task's capture, or else to ``real``."""

    def __init__(self, real: TextIO, stream: str) -> None:
        self.real = real
        self.stream = stream

    def write(self, text: str) -> int:
        capture = CAPTURE.get()
        if capture is None:
            return self.real.write(text)
        capture.write(self.stream, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:  # encoding, errors, fileno, buffer...
        return getattr(self.real, name)


class Pausable:
    """Drives ``coro`` for an asyncio task, holding it back while ``gate`` is clear.
    Exceptions thrown in (a cancel) reach ``coro``, paused or not."""

    def __init__(self, coro: Coroutine[Any, Any, Any], gate: asyncio.Event) -> None:
        self.coro = coro
        self.gate = gate

    def __await__(self) -> Generator[Any, None, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = yield step
            except BaseException as exc:  # a cancel: passed on to the coroutine
                error = exc
            while error is None and not self.gate.is_set():
                try:
                    yield from self.gate.wait().__await__()
                except BaseException as exc:
                    error = exc


class Running:
    """A shared async task in the worker: its asyncio task, gate and cancel state."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.task: asyncio.Task[None] | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.gate.set()
        if self.task is not None:
            self.task.cancel()


def install_routers() -> None:
    """Make sys.stdout and sys.stderr routers (before the task modules are imported, so
    that logging handlers made then write through them)."""
    import sys

    if not isinstance(sys.stdout, Router):
        sys.stdout = Router(sys.stdout, "stdout")
    if not isinstance(sys.stderr, Router):
        sys.stderr = Router(sys.stderr, "stderr")
