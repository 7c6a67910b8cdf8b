"""Python functions as tasks: ``App``, ``@app.task`` and the registry workers run from.

::

    import taskyard

    app = taskyard.App()

    @app.task(name="resize", queue="images", retries=2, timeout=600)
    def resize(ctx: taskyard.Context, path: str, width: int) -> dict:
        ctx.progress(0, 1, "loading")
        ...
        return {"path": path, "width": width}

    resize.submit(path="a.png", width=200)     # a Task; its result is stored as JSON

A server runs the functions of the modules named in its ``imports`` setting, in
its pool of worker processes. A task names its function by the registered name
only: a worker looks it up in this registry and never imports or evaluates
anything named by stored data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import Context, wants_context
from .errors import InvalidInput
from .model import JSON

if TYPE_CHECKING:
    from .api import Yard
    from .model import Task
    from .steps import Steps

#: Every registered function, by name, in this process.
REGISTRY: dict[str, TaskFunction] = {}


class TaskFunction:
    """A registered function: call it directly, or ``submit`` it as a task."""

    def __init__(self, app: App, fn: Callable[..., Any], name: str,
                 options: dict[str, Any]) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options  #: submit defaults: queue, retries, timeout, priority, ...
        self.takes_context = wants_context(fn)
        #: an ``async def``: run on its worker's event loop (see worker.py, aio.py)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def run(self, ctx: Context, kwargs: Mapping[str, JSON]) -> Any:
        """Call it as a task runs it: with ``ctx`` first when it takes one."""
        if self.takes_context:
            return self.fn(ctx, **kwargs)
        return self.fn(**kwargs)

    def submit(self, **kwargs: JSON) -> Task:
        """Submit a task that calls this function with ``kwargs`` (JSON values)."""
        return self.app.yard().submit_function(self.name, kwargs, **self.options)

    def __repr__(self) -> str:
        return f"<task function {self.name!r}>"


class App:
    """A set of task functions, and where ``submit`` sends them (a home, a store)."""

    def __init__(self, home: str | Path | None = None, *, store: str | None = None) -> None:
        self.home = home
        self.store = store
        self._yard: Yard | None = None
        self.functions: dict[str, TaskFunction] = {}

    def yard(self) -> Yard:
        if self._yard is None:
            from .api import Yard

            self._yard = Yard(self.home, store=self.store)
        return self._yard

    def use(self, yard: Yard | None) -> None:
        """Submit through ``yard`` from now on (a test's ``Yard.inline()``); None: the
        app's own home or store again."""
        self._yard = yard

    def task(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             **options: Any) -> Any:
        """Register a function (``@app.task`` or ``@app.task(name=..., queue=...,
        retries=..., timeout=..., priority=..., mutex=..., tenant=...)``)."""

        def register(f: Callable[..., Any]) -> TaskFunction:
            return self._register(f, name or f"{f.__module__}.{f.__qualname__}", options)

        return register(fn) if fn is not None else register

    def steps(self, cls: type[Steps] | None = None, *, name: str | None = None,
              chunk: float | None = None, **options: Any) -> Any:
        """Register a multi-step task class (``@app.steps`` or ``@app.steps(name=...,
        chunk=seconds, queue=..., ...)``); it is submitted like a function."""

        def register(c: type[Steps]) -> TaskFunction:
            from .steps import Steps as StepsClass

            if not (isinstance(c, type) and issubclass(c, StepsClass)):
                raise InvalidInput("@app.steps registers a subclass of taskyard.Steps",
                                   field="steps")
            if chunk is not None:
                from .validate import real

                c.chunk = real(chunk, "chunk", above_low=True, high=86400)
            if not c.steps:
                raise InvalidInput(f"{c.__qualname__}.steps is empty", field="steps")
            _no_async_steps(c)
            return self._register(_steps_runner(c), name or f"{c.__module__}.{c.__qualname__}",
                                  options)

        return register(cls) if cls is not None else register

    def _register(self, fn: Callable[..., Any], name: str,
                  options: dict[str, Any]) -> TaskFunction:
        from .validate import check_name

        check_name(name, "function")
        _honoured(fn, name)
        unknown = sorted(set(options) - SUBMIT_OPTIONS)
        if unknown:  # found now, not at the first submit
            raise InvalidInput(f"unknown task option {unknown[0]!r} (one of"
                               f" {', '.join(sorted(SUBMIT_OPTIONS))})", field=unknown[0])
        known = REGISTRY.get(name)
        if known is not None and known.fn is not fn:
            raise InvalidInput(f"a function named {name!r} is registered already"
                               f" ({known.fn.__module__}.{known.fn.__qualname__})",
                               field="function")
        registered = TaskFunction(self, fn, name, options)
        REGISTRY[name] = self.functions[name] = registered
        return registered


#: What ``@app.task(...)`` may set for its submits (Yard.submit_function's options).
SUBMIT_OPTIONS = frozenset({"queue", "meta", "timeout", "priority", "retries", "retry_delay",
                            "backoff", "retry_on", "unique", "mutex", "tenant"})


def _honoured(fn: Callable[..., Any], name: str) -> None:
    """Refuse what a task function cannot be: a generator, sync or async (a task
    returns one value; an ``async def`` with ``yield`` is never awaited to an end)."""
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        kind = "an async generator" if inspect.isasyncgenfunction(fn) else "a generator"
        raise InvalidInput(f"{name}: {kind} cannot be a task (a task returns one value;"
                           " return a list instead)", field="function")


def _no_async_steps(cls: type[Steps]) -> None:
    """Steps run in checkpointed chunks by a synchronous engine: no async methods."""
    for step in cls.steps:
        for method in ("init", "run", "on_error"):
            if inspect.iscoroutinefunction(getattr(step, method, None)):
                raise InvalidInput(f"{step.__qualname__}.{method} is async: steps run"
                                   " synchronously (use @app.task async def for async work)",
                                   field="steps")


def _steps_runner(cls: type[Steps]) -> Callable[..., Any]:
    def run_steps(ctx: Context, **kwargs: JSON) -> JSON:
        from .steps import Engine

        return Engine(cls, ctx, dict(kwargs),
                      lambda: ctx.store.others_waiting(ctx.task_id)).run()

    run_steps.__qualname__ = cls.__qualname__
    run_steps.__module__ = cls.__module__
    return run_steps


def lookup(name: str) -> TaskFunction | None:
    return REGISTRY.get(name)
