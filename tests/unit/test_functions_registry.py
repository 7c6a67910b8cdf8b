"""Registering task functions: mistakes are found at registration, not at a submit."""

from __future__ import annotations

import pytest

import taskyard
from taskyard.errors import InvalidInput


def test_an_unknown_task_option_is_refused_when_registering() -> None:
    app = taskyard.App()
    with pytest.raises(InvalidInput, match="bogus") as caught:
        @app.task(name="reg-bogus", bogus=1)
        def f() -> None: ...
    assert caught.value.field == "bogus"

    @app.task(name="reg-fine", queue="q", retries=2, timeout=60)
    def g() -> None: ...


@pytest.mark.parametrize("chunk", ["abc", float("nan"), -1, 0])
def test_a_steps_chunk_must_be_seconds_above_zero(chunk: object) -> None:
    app = taskyard.App()
    with pytest.raises(InvalidInput, match="chunk"):
        @app.steps(name=f"reg-chunk-{chunk}", chunk=chunk)  # type: ignore[arg-type]
        class Job(taskyard.Steps):
            steps = ("one",)

            def one(self, ctx: taskyard.Context, state: object) -> object:
                return state


def test_steps_registers_only_a_steps_class() -> None:
    app = taskyard.App()
    with pytest.raises(InvalidInput, match="Steps"):
        app.steps(name="reg-int")(int)  # type: ignore[arg-type]
