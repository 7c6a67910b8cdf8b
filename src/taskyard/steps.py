"""Multi-step tasks: ordered steps that run in time-budgeted chunks, resume from
their checkpoint, and retry with changed parameters.

::

    class Download(taskyard.Step):
        retries = 3                           # on_error may ask for this many retries

        def init(self, ctx, url: str) -> bool:     # the task's kwargs; False skips the step
            self.params = {"url": url, "timeout": 10}
            self.state = {"offset": 0}
            return True

        def run(self, ctx, until: float) -> bool:  # work until time.time() >= until
            while time.time() < until:
                ...                                # self.state is checkpointed between chunks
                if finished:
                    return True
            return False                           # more to do: another chunk

        def on_error(self, ctx, exc) -> bool:      # change self.params, True to try again
            self.params["timeout"] *= 2
            return True

    @app.steps(name="import", chunk=5.0)
    class Import(taskyard.Steps):
        steps = [Download, Parse, Store]

    Import.submit(url="https://...")

After every chunk the step's ``params`` and ``state`` are checkpointed with the
attempt's epoch. When other tasks wait for a slot, the task then gives its slot
back (it goes back to ``queued``, behind them) and a later attempt resumes at
the same step and state; so does an attempt after a crash, a restart or a
server restart. ``show`` lists each step's status, retries and error.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, ClassVar

from .context import Context
from .model import JSON

STEPS_VERSION = 1


class Yielded(BaseException):
    """Raised (by the step engine) to give the slot back between chunks; the worker
    reports it and the server moves the task back to ``queued``."""


class Step:
    """One step. Override ``run``; ``init`` and ``on_error`` are optional."""

    retries: ClassVar[int] = 0  #: how many times on_error may ask to try again

    def __init__(self) -> None:
        self.params: dict[str, JSON] = {}
        self.state: dict[str, JSON] = {}

    @classmethod
    def step_name(cls) -> str:
        return cls.__name__

    def init(self, ctx: Context, **kwargs: Any) -> bool:
        """Set ``self.params`` (and ``self.state``) from the task's kwargs; return
        False to skip the step."""
        return True

    def run(self, ctx: Context, until: float) -> bool:
        """Work until ``until`` (a ``time.time()`` value); True once the step is done."""
        raise NotImplementedError

    def on_error(self, ctx: Context, exc: Exception) -> bool:
        """The step raised ``exc``: change ``self.params`` and return True to try
        again (at most ``retries`` times), or False to fail the task."""
        return False


class Steps:
    """A task made of ``steps``, run in chunks of at most ``chunk`` seconds."""

    steps: ClassVar[list[type[Step]]] = []
    chunk: ClassVar[float] = 5.0


def _kwargs_for(method: Any, kwargs: dict[str, JSON]) -> dict[str, JSON]:
    """The task kwargs a step's ``init`` declares (all of them if it takes **kwargs)."""
    params = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params}
    return {k: v for k, v in kwargs.items() if k in names}


class Engine:
    """Runs a Steps class inside a function task, checkpointing between chunks."""

    def __init__(self, cls: type[Steps], ctx: Context, kwargs: dict[str, JSON],
                 other_work: Any) -> None:
        self.cls = cls
        self.ctx = ctx
        self.kwargs = kwargs
        self.other_work = other_work  #: () -> bool: do other tasks wait for a slot?
        saved = ctx.state if isinstance(ctx.state, dict) else None
        names = [s.step_name() for s in cls.steps]
        if saved and saved.get("version") == STEPS_VERSION and [
                r.get("name") for r in saved.get("steps", [])] == names:
            self.records: list[dict[str, JSON]] = saved["steps"]
        else:
            self.records = [{"name": n, "status": "pending", "retries": 0, "chunks": 0,
                             "error": None, "params": {}, "state": {}} for n in names]

    def save(self, current: int) -> None:
        done = sum(1 for r in self.records if r["status"] in ("done", "skipped"))
        status = {"current": self.records[current]["name"] if current < len(self.records)
                  else None, "steps": [{k: r[k] for k in ("name", "status", "retries", "chunks",
                                                         "error")} for r in self.records]}
        from .validate import check_json

        state = check_json({"version": STEPS_VERSION, "steps": self.records}, "state")
        self.ctx.store.set_steps(self.ctx.task_id, self.ctx.attempt,
                                 check_json(status, "steps"), state)
        self.ctx.progress(done, len(self.records),
                          None if status["current"] is None else f"step {status['current']}")

    def run(self) -> JSON:
        for index, step_cls in enumerate(self.cls.steps):
            record = self.records[index]
            if record["status"] in ("done", "skipped"):
                continue
            step = step_cls()
            if record["status"] == "pending":
                if step.init(self.ctx, **_kwargs_for(step.init, self.kwargs)) is False:
                    record["status"] = "skipped"
                    self.save(index + 1)
                    continue
                record["status"] = "running"
            else:
                step.params, step.state = dict(record["params"]), dict(record["state"])
            self._run_step(index, step, record)
        self.save(len(self.records))
        return {"steps": [{"name": r["name"], "status": r["status"], "retries": r["retries"]}
                          for r in self.records]}

    def _run_step(self, index: int, step: Step, record: dict[str, JSON]) -> None:
        while True:
            try:
                finished = step.run(self.ctx, time.time() + self.cls.chunk)
            except Exception as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"[:500]
                retries = int(record["retries"])
                if retries < step.retries and step.on_error(self.ctx, exc):
                    record["retries"] = retries + 1
                    record["params"], record["state"] = dict(step.params), dict(step.state)
                    self.save(index)
                    continue
                record["status"] = "failed"
                self.save(index)
                raise
            record["chunks"] = int(record["chunks"]) + 1
            record["params"], record["state"] = dict(step.params), dict(step.state)
            if finished:
                record["status"] = "done"
                self.save(index + 1)
                return
            self.save(index)
            if self.other_work():
                raise Yielded("other tasks wait")
