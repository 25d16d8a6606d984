"""Stopping long-running commands quietly on SIGINT (Ctrl-C) or SIGTERM: the signal sets an event, the work is
cancelled and unwinds through its ``finally`` blocks, and no traceback is printed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

CANCEL_REPEAT_SECONDS = 1.0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (in the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def until_stopped(stop: asyncio.Event, task: asyncio.Task[Any], *, insist: bool = False) -> None:
    """Wait for ``stop`` or for ``task`` to end; then cancel ``task`` if it still runs and wait for it to unwind
    (its cancellation is not an error here; any other exception is raised).

    Args:
        stop: Set by :func:`stop_on_signals`.
        task: The work.
        insist: Repeat the cancellation until the task ends (:func:`cancel_and_wait`); for work that must stop
            now and has no clean-up of its own to protect (arq's worker loop).
    """
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if insist:
            await cancel_and_wait(task)
        else:
            task.cancel()
            await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it ends, and wait for it (without raising what it raised).

    The cancellation is repeated every second: a library that swallows one (redis-py can, mid-command, and arq's
    worker loop then goes on) must not leave the process running after Ctrl-C.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_REPEAT_SECONDS)
