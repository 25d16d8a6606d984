"""A tick repeated alongside a block (a heartbeat, a lease renewal), stopped when the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from service.core.signals import cancel_and_wait

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def ticking(
    tick: Callable[[], Awaitable[bool]], every: float, name: str, *, at_once: bool = False
) -> AsyncIterator[None]:
    """Call ``tick`` every ``every`` seconds while the block runs (the first time at once when ``at_once``); stop
    when the block ends or a tick returns ``False``.

    A tick that raises is logged (one line, no traceback) and the next one comes as usual: one failed renewal (a
    database or Redis blip) must neither leave the rest of the block without a heartbeat nor fail the block.
    """

    async def repeat() -> None:
        if not at_once:
            await asyncio.sleep(every)
        while True:
            try:
                if not await tick():
                    return
            except Exception as exc:
                log.warning("background.tick_failed", task=name, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(every)

    task = asyncio.create_task(repeat(), name=name)
    try:
        yield
    finally:
        # Repeated cancellation: a tick's Redis call can lose one (redis-py 5.x, mid-command), and a single
        # cancel would then leave the block waiting for ever on a loop that goes on ticking.
        await cancel_and_wait(task)
