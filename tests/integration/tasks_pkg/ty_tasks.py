"""Task functions the integration tests run in a real server's workers."""

from __future__ import annotations

import logging
import os
import time

import taskyard

app = taskyard.App()


@app.task(name="add")
def add(a: int, b: int) -> int:
    print(f"adding {a} and {b}")
    logging.getLogger("ty").warning("logged to stderr")
    return a + b


@app.task(name="boom")
def boom(width: int) -> None:
    raise ValueError(f"bad width {width}")


@app.task(name="boom_bytes")
def boom_bytes() -> None:
    """An error whose text holds bytes that are not UTF-8 (a lone surrogate in Python),
    as a file name decoded with os.fsdecode does."""
    raise ValueError("cannot read " + os.fsdecode(b"/data/\xff"))


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


@app.task(name="boom_unprintable")
def boom_unprintable() -> None:
    raise Unprintable()


@app.task(name="pid")
def pid() -> int:
    return os.getpid()


@app.task(name="forever")
def forever() -> None:
    while True:
        time.sleep(0.05)


@app.task(name="wait_signal")
def wait_signal(ctx: taskyard.Context) -> object:
    while True:
        for sig in ctx.signals():
            if sig["name"] == "go":
                return sig["data"]
        time.sleep(0.05)


@app.task(name="wait_config")
def wait_config(ctx: taskyard.Context) -> object:
    seen = []
    ctx.on_config(lambda config: seen.append(config.get("speed")))
    while ctx.config.get("speed") != 2:
        ctx.progress(1, 2, "waiting for speed 2")
        time.sleep(0.05)
    return {"seen": seen}


@app.task(name="graceful")
def graceful(ctx: taskyard.Context) -> object:
    n = 0
    while not ctx.should_stop():
        n += 1
        time.sleep(0.05)
    return {"stopped_after": n}


@app.task(name="counter")
def counter(ctx: taskyard.Context, until: int) -> object:
    """Counts, checkpointing each step; a later attempt goes on from the checkpoint."""
    state = ctx.state or {"i": 0, "attempts": []}
    state["attempts"].append(ctx.attempt)
    while state["i"] < until:
        state["i"] += 1
        ctx.checkpoint(state)
        ctx.progress(state["i"], until)
        time.sleep(0.05)
    return state


@app.task(name="spin_progress")
def spin_progress(ctx: taskyard.Context, n: int) -> int:
    for i in range(n):
        ctx.progress(i, n)
    return n


class Flaky(taskyard.Step):
    retries = 3

    def init(self, ctx: taskyard.Context, fail_below: int = 2) -> bool:
        self.params = {"level": 0, "fail_below": fail_below}
        return True

    def run(self, ctx: taskyard.Context, until: float) -> bool:
        if self.params["level"] < self.params["fail_below"]:
            raise RuntimeError(f"level {self.params['level']} is too low")
        return True

    def on_error(self, ctx: taskyard.Context, exc: Exception) -> bool:
        self.params["level"] = int(self.params["level"]) + 1
        return True


class Skipped(taskyard.Step):
    def init(self, ctx: taskyard.Context) -> bool:
        return False

    def run(self, ctx: taskyard.Context, until: float) -> bool:
        raise AssertionError("a skipped step never runs")


class Long(taskyard.Step):
    def init(self, ctx: taskyard.Context, chunks: int = 3) -> bool:
        self.params = {"chunks": chunks}
        self.state = {"done": 0}
        return True

    def run(self, ctx: taskyard.Context, until: float) -> bool:
        while time.time() < until:
            time.sleep(0.01)
        self.state["done"] = int(self.state["done"]) + 1
        return self.state["done"] >= self.params["chunks"]


@app.steps(name="pipeline", chunk=0.2)
class Pipeline(taskyard.Steps):
    steps = [Flaky, Skipped, Long]


@app.task(name="reports_error")
def reports_error(ctx: taskyard.Context, message: str) -> str:
    """Says it failed, then returns normally: it ends failed, reason reported."""
    ctx.report_error(message)
    return "returned anyway"


@app.task(name="hog")
def hog(mib: int) -> int:
    """Allocates ``mib`` MiB at once (past a memory limit: MemoryError)."""
    return len(bytearray(mib * 1024 * 1024))


@app.task(name="spin")
def spin() -> None:
    """Burns CPU until something stops it."""
    while True:
        pass


@app.task(name="emit_then_wait")
def emit_then_wait(ctx: taskyard.Context, n: int) -> int:
    """Emits n messages, then waits for a signal (so they are read while it runs)."""
    for i in range(n):
        ctx.emit({"i": i})
    while not ctx.signals():
        time.sleep(0.02)
    return n


@app.task(name="status_file")
def status_file(ctx: taskyard.Context) -> object:
    """Where it is told its status file is: ctx, and its environment (as a command's)."""
    return {"ctx": ctx.status_file, "env": os.environ.get("TASKYARD_STATUS_FILE"),
            "old": os.environ.get("MGR_LT_PID")}
