"""The API process's one Redis pub/sub connection, shared by everything in it that listens to a channel.

An API process listens on two channels of its deployment's namespace: API-key revocations
(:mod:`service.tenants.keycache`) and live changes (:mod:`service.changefeed`). Both need the same of the
connection: to know when it stops carrying messages, including when it dies silently (no reset; a proxy or a
network that swallows packets). So one :class:`RedisSubscription` holds a single connection subscribed to every
channel, and tells each channel's :class:`Listener`:

- ``live()``: Redis confirmed the subscription to its channel; what is published from now on reaches it;
- ``receive(message)``: a message of its channel;
- ``lost()``: the connection dropped or fell silent (or the subscription stopped): messages published since may
  never arrive, until the next ``live()``.

Liveness: the subscription pings Redis every :data:`PING_SECONDS` and remembers when Redis was last heard (a
pong, a confirmation or a message). A connection on which nothing was heard for :data:`HEARD_WITHIN_SECONDS` is
given up as silent: every listener is told ``lost()`` within about that long and a ping, and a new connection is
made :data:`RESUBSCRIBE_SECONDS` later, as after a drop. :attr:`RedisSubscription.heard_recently` answers the same
question at any moment, for a listener that must not wait for the loop to notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError

from service.core.signals import cancel_and_wait

log = structlog.get_logger(__name__)

PING_SECONDS = 0.5
"""How often the subscription pings Redis to prove the connection still carries messages."""
HEARD_WITHIN_SECONDS = 1.0
"""A connection on which Redis was not heard for longer is silent: its messages may be lost."""
RESUBSCRIBE_SECONDS = 1.0
"""The wait before a new connection, after one dropped or fell silent."""


class Listener(Protocol):
    """What a channel's user is told by the :class:`RedisSubscription` (see the module docstring)."""

    def live(self) -> None:
        """The channel is subscribed: messages published from now on arrive."""

    def receive(self, message: str) -> None:
        """A message of the channel."""

    def lost(self) -> None:
        """The connection dropped, fell silent or stopped: messages may have been missed since."""


class RedisSubscription:
    """The process's one pub/sub connection to the channels of its listeners (see the module docstring).

    Args:
        pool: The process's Redis pool: the subscription's connection is configured as its connections are, but
            made in a pool of its own (in the event loop that runs the subscription).
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._listeners: dict[str, Listener] = {}
        self._heard_at = -HEARD_WITHIN_SECONDS
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def listen(self, channel: str, listener: Listener) -> None:
        """Tell ``listener`` of ``channel`` (every channel is given before :meth:`start`)."""
        if self._task is not None:
            raise RuntimeError("the subscription has started: give every channel before it starts")
        self._listeners[channel] = listener

    @property
    def heard_recently(self) -> bool:
        """Whether Redis was heard on the connection within :data:`HEARD_WITHIN_SECONDS`."""
        return time.monotonic() - self._heard_at <= HEARD_WITHIN_SECONDS

    def start(self) -> None:
        """Subscribe, in the running event loop, and stay subscribed until :meth:`aclose`."""
        self._task = asyncio.create_task(self._run(), name="redis-subscription")

    async def aclose(self) -> None:
        """Unsubscribe and close the connection (every listener is told ``lost()``)."""
        self._stopping.set()  # the loop ends by itself even if redis-py swallows the cancellation
        if self._task is not None:
            await cancel_and_wait(self._task)  # redis-py can swallow a single cancel mid-command

    async def _run(self) -> None:
        redis = Redis(connection_pool=ConnectionPool(connection_class=self._pool.connection_class,
                                                     **self._pool.connection_kwargs))
        try:
            while not self._stopping.is_set():
                await self._follow(redis)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RESUBSCRIBE_SECONDS)
        finally:
            await redis.aclose(close_connection_pool=True)

    async def _follow(self, redis: Redis) -> None:
        """One connection, until it drops, falls silent or the subscription stops; then every listener is told."""
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(*self._listeners)
                started = pinged = time.monotonic()
                while not self._stopping.is_set():
                    now = time.monotonic()
                    silence = now - max(started, self._heard_at)
                    if silence > HEARD_WITHIN_SECONDS:
                        log.warning("subscription.silent", seconds=round(silence, 1))
                        return
                    if now - pinged >= PING_SECONDS:
                        await pubsub.ping()
                        pinged = now
                    message = await pubsub.get_message(timeout=PING_SECONDS / 2)
                    if message is None:
                        continue
                    self._heard_at = time.monotonic()
                    if message["type"] == "subscribe":
                        self._listeners[_text(message["channel"])].live()
                    elif message["type"] == "message":
                        self._listeners[_text(message["channel"])].receive(_text(message["data"]))
        except (RedisError, OSError) as exc:
            log.warning("subscription.lost", error_type=type(exc).__name__)
        except Exception:  # a bug (a listener's) must not leave the process unsubscribed: log it, subscribe again
            log.exception("subscription.failed")
        finally:
            for listener in self._listeners.values():
                listener.lost()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
