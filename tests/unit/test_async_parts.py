"""Async function tasks' parts: what registration refuses, the async_concurrency
setting, pausing a coroutine, and output routed by context."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import taskyard
from taskyard.aio import CAPTURE, Capture, Pausable, Router
from taskyard.config import load
from taskyard.errors import ConfigError, InvalidInput


def test_an_async_def_registers_and_generators_are_refused() -> None:
    app = taskyard.App()

    @app.task(name="async-fine", timeout=5, retries=1)
    async def fine(ctx: taskyard.Context, n: int) -> int:
        return n

    assert fine.is_async and fine.takes_context
    with pytest.raises(InvalidInput, match="async generator") as caught:
        @app.task(name="async-gen")
        async def agen() -> AsyncIterator[int]:
            yield 1
    assert caught.value.field == "function"
    with pytest.raises(InvalidInput, match="generator"):
        @app.task(name="sync-gen")
        def gen() -> Iterator[int]:
            yield 1


def test_async_step_methods_are_refused() -> None:
    app = taskyard.App()

    class Fetch(taskyard.Step):
        async def run(self, ctx: taskyard.Context, until: float) -> bool:  # type: ignore[override]
            return True

    with pytest.raises(InvalidInput, match="Fetch.run is async") as caught:
        @app.steps(name="async-steps")
        class Job(taskyard.Steps):
            steps = [Fetch]
    assert caught.value.field == "steps"


def test_async_concurrency_is_a_setting_from_one(tmp_path: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(tmp_path).async_concurrency == 1
    monkeypatch.setenv("TASKYARD_ASYNC_CONCURRENCY", "8")
    assert load(tmp_path).async_concurrency == 8
    for bad in ("0", "many", "1001"):
        monkeypatch.setenv("TASKYARD_ASYNC_CONCURRENCY", bad)
        with pytest.raises(ConfigError, match="async_concurrency"):
            load(tmp_path)


def test_a_paused_coroutine_runs_no_code_until_resumed_and_a_cancel_reaches_it() -> None:
    steps: list[str] = []

    async def work() -> str:
        try:
            for i in range(100):
                steps.append(f"step {i}")
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise
        return "done"

    async def main() -> None:
        gate = asyncio.Event()
        gate.set()
        task = asyncio.ensure_future(Pausable(work(), gate))  # type: ignore[arg-type]
        while len(steps) < 3:
            await asyncio.sleep(0)
        gate.clear()
        for _ in range(5):
            await asyncio.sleep(0)
        held = len(steps)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(steps) == held  # nothing of it ran while paused
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert steps[-1] == "cancelled"  # it saw the cancel, paused as it was

    asyncio.run(main())


def test_output_goes_to_the_stream_of_the_task_whose_context_writes() -> None:
    sent: list[dict[str, Any]] = []
    real = io.StringIO()
    router = Router(real, "stdout")

    async def task(tag: str) -> None:
        CAPTURE.set(Capture(len(tag), 1, sent.append))
        for i in range(3):
            router.write(f"{tag}{i}\n")
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(task("a"), task("bb"))

    asyncio.run(main())
    router.write("nobody's\n")
    by_task: dict[int, str] = {}
    for message in sent:
        by_task[message["out"]] = by_task.get(message["out"], "") + message["data"]
    assert by_task == {1: "a0\na1\na2\n", 2: "bb0\nbb1\nbb2\n"}
    assert real.getvalue() == "nobody's\n"
