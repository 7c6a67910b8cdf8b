"""Running one claimed attempt in the calling process, for inline mode (tests).

``Yard.inline()`` claims what it submitted as a server would (``store.claim``,
fenced by its owner id) and hands each claim to :func:`run`, which returns the
attempt's outcome and output writes for ``store.finish``. A function is called
in this thread with a real ``ctx`` (an ``async def`` on an event loop of its
own); its ``sys.stdout`` and ``sys.stderr`` writes are its output, kept within
the output bounds. A command runs as a real child process in its own process
group, waited for here. A timeout ends a command (SIGKILL to its group), an
async function (cancelled), and a sync function (an exception raised in its
thread at its next Python instruction: a long call into C ends first; a
function that returns late is recorded as timed out all the same).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..lifecycle import Reason, Status
from ..messages import DEFAULT_TAIL, MessageWrite
from ..store.base import Claim, Outcome, OutputWrite, ServerStore
from .messages import MessageBuffer
from .output import StreamBuffer

Ran = tuple[Outcome, list[OutputWrite | MessageWrite]]


class TimedOut(BaseException):
    """Raised in a function that ran past its timeout (not an Exception: the function's
    own ``except Exception`` does not swallow it)."""


class Killed(BaseException):
    """Raised in an inline function that was killed (``Yard.kill`` from another thread)."""


WATCH_POLL = 0.02  #: seconds between looks for requests while an attempt runs inline


class Watch:
    """Answers control requests for the attempt running inline, from a thread of its
    own: a kill raises Killed in the function's thread (an asynchronous exception) or
    signals the command's group; pause, resume and stdin are refused (the task runs in
    the caller's thread, or as a child it waits for)."""

    def __init__(self, store: Callable[[], ServerStore], owner: str,
                 command: bool = False) -> None:
        self.thread_id = threading.get_ident()
        #: a command is never interrupted by an exception raised in its thread: one that
        #: landed while it was being started left the child running, unwaited for
        self.command = command
        self.pid: int | None = None  #: the command's process group, once it started
        self.killed = False
        self._lock = threading.Lock()
        self._armed = True
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(store, owner),
                                        name="taskyard-inline-watch", daemon=True)
        self._thread.start()

    def _serve(self, factory: Callable[[], ServerStore], owner: str) -> None:
        store = factory()
        try:
            while not self._done.wait(WATCH_POLL):
                for request in store.pending_requests(owner):
                    store.complete_request(request.id, *self._answer(request.kind))
        finally:
            store.close()

    def _answer(self, kind: str) -> tuple[str, str | None]:
        if kind != "kill":
            return "rejected", ("it runs inline (Yard.inline()), in the caller's thread or"
                                " as a child it waits for: only kill applies")
        with self._lock:
            if not self._armed:
                return "rejected", "it ended"
            self.killed = True
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            elif not self.command:
                _raise_in(self.thread_id, Killed)
        return "done", None  # a command not started yet is killed as it starts

    def started(self, pid: int) -> None:
        """The command's group exists: a kill asked while it was starting applies now."""
        with self._lock:
            self.pid = pid
            if self.killed:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
        self._done.set()
        self._thread.join()


def _raise_in(thread_id: int, exc: type[BaseException]) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


class Streams:
    """A function's stdout and stderr as the text streams it writes to."""

    def __init__(self, claim: Claim, head: int, tail: int) -> None:
        self.out = _Writer(StreamBuffer(claim.task_id, claim.epoch, "stdout", head, tail))
        self.err = _Writer(StreamBuffer(claim.task_id, claim.epoch, "stderr", head, tail))

    def writes(self) -> list[OutputWrite | MessageWrite]:
        return [*self.out.buf.take(), *self.err.buf.take()]


class _Writer:
    def __init__(self, buf: StreamBuffer) -> None:
        self.buf = buf
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        self.buf.feed(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run(claim: Claim, store: Callable[[], ServerStore], owner: str, head: int, tail: int,
        cwd: str) -> Ran:
    """Run ``claim`` to its end here: a function, else a command; a kill asked meanwhile
    (from another thread) ends it."""
    watch = Watch(store, owner, command=claim.function is None)
    try:
        if claim.function is not None:
            ran = _function(claim, store, head, tail)
        else:
            ran = _command(claim, head, tail, cwd, watch)
        watch.disarm()
    except Killed:  # raised after its function returned, before the watch was disarmed
        watch.disarm()
        ran = Outcome(claim.task_id, claim.epoch, Status.STOPPED, Reason.KILLED), []
    return ran


def _function(claim: Claim, store: Callable[[], ServerStore], head: int, tail: int) -> Ran:
    from ..context import Context
    from ..functions import lookup

    fn = lookup(claim.function or "")
    if fn is None:
        return _failed(claim, Reason.SPAWN, f"no function named {claim.function!r} (is its"
                       " module imported in this process?)"), []
    streams = Streams(claim, head, tail)
    deadline = time.time() + claim.timeout if claim.timeout else None
    ctx = Context(store, claim.task_id, claim.epoch, deadline)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with contextlib.redirect_stdout(streams.out), contextlib.redirect_stderr(streams.err), \
            _logging_to(streams.err):
        outcome = _call(claim, fn, ctx, json.loads(claim.kwargs or "{}"))
        try:
            ctx.close()
        except Exception as exc:  # a stale attempt's last progress
            streams.err.write(f"taskyard: {exc}\n")
    after = resource.getrusage(resource.RUSAGE_SELF)
    usage = (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
             after.ru_maxrss)
    return outcome._replace(usage=usage), streams.writes()


@contextlib.contextmanager
def _logging_to(err: _Writer) -> Any:
    """Warnings and errors logged meanwhile go to the task's stderr too, as in a worker
    (where logging has no handler and its last resort writes them to stderr); in a
    test, the test's own handlers (pytest's capture) see them as well."""
    import logging

    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _call(claim: Claim, fn: Any, ctx: Any, kwargs: dict[str, Any]) -> Outcome:
    from ..steps import Yielded
    from ..validate import check_json

    started = time.monotonic()
    try:
        if fn.is_async:
            value = _await(fn.run(ctx, kwargs), claim.timeout)
        else:
            with _watchdog(claim.timeout):
                value = fn.run(ctx, kwargs)
        if claim.timeout and time.monotonic() - started > claim.timeout:
            raise TimedOut()
        return Outcome(claim.task_id, claim.epoch, Status.SUCCEEDED,
                       result=check_json(value, "result"))
    except Yielded:
        return Outcome(claim.task_id, claim.epoch, Status.QUEUED)
    except TimedOut:
        return _failed(claim, Reason.TIMEOUT, f"ran past its timeout of {claim.timeout:g}s")
    except Killed:
        return Outcome(claim.task_id, claim.epoch, Status.STOPPED, Reason.KILLED)
    except BaseException as exc:  # as in a worker: the task fails, the caller goes on
        traceback.print_exception(exc)
        return _failed(claim, Reason.EXCEPTION, _error_text(exc))


def _await(coro: Any, timeout: float | None) -> Any:
    """Run an async function's coroutine to its end on a loop of its own (in a thread
    of its own when this thread runs a loop already: an async test)."""
    import asyncio

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise TimedOut() from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    result: list[Any] = []
    error: list[BaseException] = []

    def in_thread() -> None:
        try:
            result.append(asyncio.run(bounded()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=in_thread, name="taskyard-inline-async")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@contextlib.contextmanager
def _watchdog(timeout: float | None) -> Any:
    """After ``timeout`` seconds, raise TimedOut in this thread (an asynchronous
    exception, seen at its next bytecode: a long C call ends first). Not SIGALRM:
    pytest-timeout and others own that."""
    if not timeout:
        yield
        return
    import ctypes

    thread_id = threading.get_ident()
    lock = threading.Lock()
    armed = [True]

    def expire() -> None:
        with lock:
            if armed[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                           ctypes.py_object(TimedOut))

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            armed[0] = False
        timer.cancel()


def _error_text(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:2000]
    except Exception:  # its __str__ raised in turn
        return f"{type(exc).__name__} (its message could not be turned into text)"


def _failed(claim: Claim, reason: Reason, error: str) -> Outcome:
    return Outcome(claim.task_id, claim.epoch, Status.FAILED, reason, error=error)


def _command(claim: Claim, head: int, tail: int, cwd: str, watch: Watch) -> Ran:
    """A real child process in its own group, its output read here to its end."""
    read_end, write_end = os.pipe()  # its messages, as a server gives every command task
    env = dict(os.environ, **claim.env, TASKYARD_TASK_ID=str(claim.task_id),
               TASKYARD_ATTEMPT=str(claim.epoch), TASKYARD_RUN=claim.run_tag,
               TASKYARD_MESSAGES_FD=str(MESSAGES_FD))
    try:
        proc = subprocess.Popen(list(claim.argv), env=env, cwd=claim.cwd or cwd,
                                stdin=subprocess.PIPE if claim.stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, pass_fds=(write_end, MESSAGES_FD),
                                preexec_fn=lambda: os.dup2(write_end, MESSAGES_FD))
    except (OSError, ValueError) as exc:
        os.close(read_end)
        return _failed(claim, Reason.SPAWN, f"cannot start {claim.argv[0]!r}: {exc}"), []
    finally:
        os.close(write_end)
    messages = MessageBuffer(claim.task_id, claim.epoch, int(env.get(
        "TASKYARD_MESSAGES_TAIL", "") or DEFAULT_TAIL))
    reader = threading.Thread(target=_drain, args=(read_end, messages), daemon=True)
    reader.start()
    watch.started(proc.pid)
    timed_out = False
    try:
        out, err = proc.communicate(claim.stdin, timeout=claim.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    code = proc.returncode
    reader.join()
    streams = Streams(claim, head, tail)
    streams.out.buf.feed(out)
    streams.err.buf.feed(err)
    writes = [*streams.writes(), *messages.take()]
    if watch.killed:
        return Outcome(claim.task_id, claim.epoch, Status.STOPPED, Reason.KILLED,
                       signal=-code if code < 0 else None), writes
    return _exit_outcome(claim, code, timed_out), writes


#: the descriptor a command reads as TASKYARD_MESSAGES_FD: one digit, as dash's ``>&N``
#: takes (a server gives the lowest its --fd leave free; an inline task has no --fd)
MESSAGES_FD = 3


def _drain(read_end: int, messages: MessageBuffer) -> None:
    """Read a command's messages pipe to its end (its every writer gone)."""
    with open(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            messages.feed(chunk)
    messages.at_eof()


def _exit_outcome(claim: Claim, code: int, timed_out: bool) -> Outcome:
    task, epoch = claim.task_id, claim.epoch
    if timed_out:
        return Outcome(task, epoch, Status.FAILED, Reason.TIMEOUT, signal=-code if code < 0
                       else None, error=f"ran past its timeout of {claim.timeout:g}s")
    if code == 0:
        return Outcome(task, epoch, Status.SUCCEEDED, exit_code=0)
    if code < 0:
        return Outcome(task, epoch, Status.FAILED, Reason.SIGNAL, signal=-code,
                       error=f"killed by {signal.Signals(-code).name}")
    return Outcome(task, epoch, Status.FAILED, Reason.EXIT, exit_code=code)
