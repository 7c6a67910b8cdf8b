"""A pooled worker process: runs function tasks one at a time for its server.

Started by the server (``python -m taskyard.worker``) in its own process group,
with:

- fd 0: the server's messages, one JSON object per line:
  ``{"run": {"task": ID, "attempt": N, "function": NAME, "kwargs": JSON-TEXT,
  "deadline": UNIX|null}}``;
- fd 1 and 2: pipes the server reads as the running task's stdout and stderr;
- fd 3: reports to the server, one JSON object per line: ``{"ready": PID}``
  once its modules are imported, then per task ``{"done": ID, "attempt": N,
  "ok": BOOL, "result": JSON-TEXT, "reason": ..., "error": ..., "recycle":
  BOOL}``.

It imports the modules in ``TASKYARD_WORKER_IMPORTS`` and runs only functions
they registered. It dies with its server (``PR_SET_PDEATHSIG``) and leaves after
``TASKYARD_WORKER_MAX_TASKS`` tasks or when its memory grew past
``TASKYARD_WORKER_MAX_MIB`` (the server starts a fresh one).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .limits import Limits

REPORT_FD = 3
MEMORY_EVERY = 16  #: look at the worker's memory after every this many tasks


def _die_with_parent() -> None:
    """SIGKILL this worker when its server dies, even by kill -9."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the server died before prctl took effect
        os._exit(1)


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class Worker:
    def __init__(self) -> None:
        self.report = os.fdopen(REPORT_FD, "w", buffering=1, encoding="utf-8")
        self.max_tasks = int(os.environ.get("TASKYARD_WORKER_MAX_TASKS", "0") or 0)
        self.max_mib = float(os.environ.get("TASKYARD_WORKER_MAX_MIB", "0") or 0)
        self.done = 0
        self.base_mib = 0.0
        self.leave = False  #: a task put limits on it: leave after that task
        self._settings: Any = None
        self.cwd = os.environ.get("TASKYARD_WORKER_CWD", "")
        self.messages_tail = int(os.environ.get("TASKYARD_MESSAGES_TAIL", "0") or 10000)
        self._loop: Any = None
        self.shared: dict[tuple[int, int], Any] = {}  #: async tasks running side by side
        #: async tasks it may run at once (the async_concurrency setting)
        self.concurrency = max(1, int(os.environ.get("TASKYARD_WORKER_ASYNC", "1") or 1))

    def send(self, message: dict[str, Any]) -> None:
        self.report.write(json.dumps(message, separators=(",", ":")) + "\n")

    def start(self) -> bool:
        """Import the task modules; report ready (True) or the error (False)."""
        extra = os.environ.get("TASKYARD_IMPORT_PATH")
        if extra:
            sys.path.insert(0, extra)
        if self.cwd:  # the server's cwd setting, else where it was started
            os.chdir(self.cwd)
        import importlib

        if self.concurrency > 1:  # before the imports: logging handlers write through them
            from .aio import install_routers

            install_routers()
        for name in filter(None, os.environ.get("TASKYARD_WORKER_IMPORTS", "").split(",")):
            try:
                importlib.import_module(name)
            except BaseException as exc:  # report any import failure, then leave
                traceback.print_exc()
                sys.stderr.flush()
                self.send({"failed": f"cannot import {name}: {type(exc).__name__}: {exc}"})
                return False
        self.base_mib = _rss_mib()
        from .functions import REGISTRY

        self.send({"ready": os.getpid(),
                   "async": sorted(name for name, fn in REGISTRY.items() if fn.is_async)})
        return True

    def store(self) -> Any:
        from .config import load
        from .store import open_store

        if self._settings is None:
            self._settings = load(os.environ.get("TASKYARD_HOME"))
        return open_store(self._settings.store_location, synchronous=self._settings.synchronous)

    def run(self, job: dict[str, Any]) -> None:
        """Run one task to its end, alone on this worker (an async one on its loop)."""
        begun = self._begin(job)
        if begun is None:
            return
        fn, ctx, kwargs, out = begun
        before = resource.getrusage(resource.RUSAGE_SELF)
        limited = self._limit(job.get("limits"), before)
        saved = _set_env(_status_env(job))  # it runs alone: the process's environment is its
        try:
            value = fn.run(ctx, kwargs)
            if fn.is_async:
                value = self.loop().run_until_complete(value)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt end the task only
            self._settle(out, ctx, error=exc, memory=limited.memory if limited else None)
        else:
            self._settle(out, ctx, value=value)
        finally:
            _set_env(saved)
        after = resource.getrusage(resource.RUSAGE_SELF)
        # CPU is the task's own; the peak memory is the worker's so far (a process's peak
        # cannot be reset between two tasks)
        out["usage"] = [after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
                        after.ru_maxrss]
        self._finish(out)

    def _begin(self, job: dict[str, Any]) -> tuple[Any, Any, dict[str, Any],
                                                   dict[str, Any]] | None:
        """The function, ctx, arguments and report of ``job``; None (reported) when no
        function of that name is registered."""
        from .context import Context
        from .functions import lookup

        task_id, attempt = int(job["task"]), int(job["attempt"])
        out: dict[str, Any] = {"done": task_id, "attempt": attempt, "ok": False}
        fn = lookup(str(job["function"]))
        if fn is None:
            out.update(reason="spawn", error=f"no function named {job['function']!r} (is its"
                       " module in the server's imports?)")
            self._finish(out)
            return None
        if self.cwd:  # each call starts there, whatever the last one did
            with contextlib.suppress(OSError):
                os.chdir(self.cwd)
        ctx = Context(self.store, task_id, attempt, job.get("deadline"))
        ctx.messages_tail = self.messages_tail
        ctx.status_file = job.get("status_file")
        return fn, ctx, json.loads(job["kwargs"] or "{}"), out

    def _settle(self, out: dict[str, Any], ctx: Any, *, value: Any = None,
                error: BaseException | None = None, memory: int | None = None) -> None:
        """Put how the call ended (its value, or ``error``) into its report ``out``."""
        from .steps import Yielded
        from .validate import check_json

        try:
            if error is None:
                out.update(ok=True, result=check_json(value, "result"))
            elif isinstance(error, Yielded):
                out.update(yielded=str(error))
            else:
                out.update(self._failed(error, memory if isinstance(error, MemoryError)
                                        else None))
        except BaseException as exc:  # a result that is not JSON
            out.update(self._failed(exc, None))
        finally:
            try:
                ctx.close()
            except Exception as exc:  # a stale attempt's last progress: not the task's fault
                sys.stderr.write(f"taskyard: {exc}\n")

    def loop(self) -> Any:
        """The worker's event loop (made at the first async task)."""
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop

    def _limit(self, given: Any, before: resource.struct_rusage) -> Limits | None:
        """Put the task's limits on this worker (its CPU limit counted from the CPU time
        used so far); the worker leaves after the task (they cannot all be lifted)."""
        if not given:
            return None
        from .limits import parse
        from .server.rlimits import apply

        found = parse(given)
        self.leave = True
        apply(found, before.ru_utime + before.ru_stime)
        return found

    def _failed(self, exc: BaseException, memory: int | None) -> dict[str, Any]:
        """The report of a task that raised ``exc``: reason limit for a MemoryError under
        a memory limit of ``memory`` bytes."""
        try:
            traceback.print_exception(exc)
            error = f"{type(exc).__name__}: {exc}"
        except Exception:  # its __str__ raised in turn: the worker must not die of it
            error = f"{type(exc).__name__} (its message could not be turned into text)"
        if memory is None:
            return {"reason": "exception", "error": error[:2000]}
        from .limits import size_text

        return {"reason": "limit", "error": f"memory limit {size_text(memory)} ({error})"[:2000]}

    def _finish(self, out: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.done += 1
        recycle = self.leave or (self.max_tasks > 0 and self.done >= self.max_tasks) or (
            self.max_mib > 0 and self.done % MEMORY_EVERY == 0
            and _rss_mib() - self.base_mib > self.max_mib)
        out["recycle"] = recycle
        self.send(out)
        if recycle and not self.shared:
            os._exit(0)
        self.leave = self.leave or recycle  # with async tasks still running: when they end

    def serve(self) -> int:
        if self.concurrency > 1:
            return self.serve_shared()
        with os.fdopen(0, "rb", buffering=0) as control:
            buffered = b""
            while True:
                chunk = control.read(65536)
                if not chunk:
                    return 0  # the server closed our pipe (it stopped or died)
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    if "run" in message:
                        self.run(message["run"])
                    elif message.get("exit"):
                        return 0


    # -- several async tasks at once (async_concurrency > 1) ------------------------------

    def serve_shared(self) -> int:
        """Read the server's messages on the event loop, which runs async tasks meanwhile;
        a sync task (sent only to an idle worker) blocks it while it runs."""
        loop = self.loop()
        buffered = bytearray()

        def on_control() -> None:
            chunk = os.read(0, 65536)
            if not chunk:
                loop.stop()  # the server closed our pipe (it stopped or died)
                return
            buffered.extend(chunk)
            *lines, rest = bytes(buffered).split(b"\n")
            buffered[:] = rest
            for line in lines:
                self._control(json.loads(line), loop)

        loop.add_reader(0, on_control)
        loop.run_forever()
        return 0

    def _control(self, message: dict[str, Any], loop: Any) -> None:
        if "run" in message:
            job = message["run"]
            if job.get("shared") or self._is_async(job):
                self._start_shared(job, loop)
            else:
                self.run(job)
        elif message.get("exit"):
            loop.stop()
        else:
            for verb in ("cancel", "pause", "resume"):
                running = self.shared.get(tuple(message.get(verb) or ()))
                if running is not None:
                    {"cancel": running.cancel, "pause": running.gate.clear,
                     "resume": running.gate.set}[verb]()

    @staticmethod
    def _is_async(job: dict[str, Any]) -> bool:
        from .functions import lookup

        fn = lookup(str(job["function"]))
        return fn is not None and fn.is_async

    def _start_shared(self, job: dict[str, Any], loop: Any) -> None:
        """Start an async task beside the others (its output through the report pipe when
        ``shared``; else it is alone and its output is the worker's pipes)."""
        import asyncio

        from .aio import CAPTURE, Capture, Pausable, Running

        begun = self._begin(job)
        if begun is None:
            return
        fn, ctx, kwargs, out = begun
        self._limit(job.get("limits"), resource.getrusage(resource.RUSAGE_SELF))  # alone
        key = (ctx.task_id, ctx.attempt)
        running = self.shared[key] = Running(asyncio.Event())
        running.gate.set()

        async def call() -> None:
            if job.get("shared"):
                CAPTURE.set(Capture(ctx.task_id, ctx.attempt, self.send))
            try:
                value = await Pausable(fn.run(ctx, kwargs), running.gate)
            except asyncio.CancelledError as exc:  # a kill or timeout: no traceback
                self._settle(out, ctx, error=None if running.cancelled else exc)
            except BaseException as exc:
                self._settle(out, ctx, error=exc)
            else:
                self._settle(out, ctx, value=value)
            if running.cancelled:
                out.update(ok=False, cancelled=True)
            del self.shared[key]
            self._finish(out)

        running.task = loop.create_task(call())


def _status_env(job: dict[str, Any]) -> dict[str, str]:
    """The status file variables of a task (as a command task has them)."""
    path = job.get("status_file")
    if not path:
        return {}
    told = {"TASKYARD_STATUS_FILE": str(path)}
    if job.get("status_file_env"):
        told[str(job["status_file_env"])] = str(path)
    return told


def _set_env(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set (None: unset) environment variables; returns what they were before."""
    before = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return before


def main() -> int:
    _die_with_parent()
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a task's SIGINT ends it, not only a frame
    worker = Worker()
    if not worker.start():
        return 1
    return worker.serve()


if __name__ == "__main__":
    sys.exit(main())
