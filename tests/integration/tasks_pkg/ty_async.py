"""Async task functions the integration tests run in a real server's workers (and
inline mode runs in the test's own process)."""

from __future__ import annotations

import asyncio
import os

import taskyard

app = taskyard.App()


@app.task(name="aadd")
async def aadd(ctx: taskyard.Context, a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    print(f"async adding {a} and {b}")
    ctx.progress(1, 1, "added")
    return a + b


@app.task(name="aboom")
async def aboom(width: int) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"bad async width {width}")


@app.task(name="asleep_forever")
async def asleep_forever() -> None:
    while True:
        await asyncio.sleep(0.05)


@app.task(name="aticks")
async def aticks(ctx: taskyard.Context, tag: str, until: str = "") -> object:
    """Prints its tag each tick until a signal ``go`` (or at once without ``until``),
    counting them in its metadata (a write per tick: read at once, unlike throttled
    progress); returns its worker's pid and how many ticks it printed."""
    ticks = 0
    while True:
        print(f"{tag} tick {ticks}")
        ticks += 1
        ctx.update_meta({"ticks": ticks})
        if not until or any(s["name"] == until for s in ctx.signals()):
            return {"pid": os.getpid(), "ticks": ticks}
        await asyncio.sleep(0.02)


@app.task(name="agraceful")
async def agraceful(ctx: taskyard.Context) -> object:
    n = 0
    while not ctx.should_stop():
        n += 1
        await asyncio.sleep(0.02)
    return {"stopped_after": n}
