"""A heartbeat outlives a failed tick: logged in one line, the next tick comes, the block ends cleanly."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from service.core.background import ticking


async def test_a_tick_that_raises_is_logged_and_the_heartbeat_keeps_beating() -> None:
    ticks = 0
    beat_again = asyncio.Event()

    async def renew() -> bool:  # a lease renewal whose first try meets a Redis blip
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            raise ConnectionError("redis went away")
        if ticks == 3:
            beat_again.set()
        return True

    with capture_logs() as logs:
        async with ticking(renew, 0, "in-progress:test", at_once=True):  # the block does not fail at its end
            await asyncio.wait_for(beat_again.wait(), timeout=30)

    assert ticks >= 3
    warnings = [(entry["event"], entry["task"], entry["error"]) for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [("background.tick_failed", "in-progress:test", "ConnectionError: redis went away")]
    assert all("exc_info" not in entry for entry in logs)  # one line, no traceback


async def test_a_tick_answering_false_stops_the_heartbeat_and_not_the_block() -> None:
    ticks = 0
    stopped = asyncio.Event()

    async def renew() -> bool:  # the lease is found lost at once
        nonlocal ticks
        ticks += 1
        stopped.set()
        return False

    async with ticking(renew, 0, "sync-heartbeat:test", at_once=True):
        await asyncio.wait_for(stopped.wait(), timeout=30)
        for _ in range(10):
            await asyncio.sleep(0)  # let a loop that did not stop tick again

    assert ticks == 1


async def test_the_block_ends_even_when_a_tick_loses_the_cancellation() -> None:
    ticks = 0
    in_flight = asyncio.Event()

    async def renew() -> bool:  # the first renewal's Redis call loses the cancellation that stops the loop
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            in_flight.set()
            with contextlib.suppress(asyncio.CancelledError):  # the library's fault, injected
                await asyncio.get_running_loop().create_future()
        return True

    async def block() -> None:
        async with ticking(renew, 0.01, "in-progress:test", at_once=True):
            await in_flight.wait()

    await asyncio.wait_for(block(), timeout=10)  # a single cancel left the block waiting for ever
    assert ticks >= 2  # the loop went on after the lost cancellation, and the next one stopped it
