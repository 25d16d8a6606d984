"""Live changes across processes: published on Redis after commit, fanned out to each API process's subscribers.

Any process (API, worker, CLI) publishes the :class:`~service.core.changes.Change` records a committed transaction
deferred (:func:`publish_changes`) on one channel of the deployment's namespace, ``<namespace>:changes``.

Each API process holds one :class:`ChangeHub`: the listener of that channel on the process's one Redis
subscription (:class:`~service.subscription.RedisSubscription`, shared with the API-key cache), which hands every
change to the local subscribers of that change's tenant and topics. Every subscriber re-reads a changed row
through its own scope; :meth:`ChangeHub.read` makes that one read per change and scope however many subscribers
share it, at most :attr:`ChangeHub.concurrent_reads` at once in the process (well below the database pool, which
requests need too), and a key holds at most :attr:`ChangeHub.per_key` subscriptions in the process. Each
subscriber has a bounded queue: one that falls :attr:`ChangeHub.capacity` changes behind is dropped (its
:class:`Feed` raises :class:`SlowSubscriberError`) rather than let memory grow. Redis pub/sub delivers at most
once, so the hub never pretends otherwise: when the Redis subscription is lost, because its connection dropped or
fell silent (nothing heard for :data:`~service.subscription.HEARD_WITHIN_SECONDS`: every feed ends within about
that long and a ping), every feed ends with :class:`ChangeFeedLostError` (changes published until the channel is
subscribed again would be missed silently), and a subscriber that arrives while Redis is unreachable gets
:class:`ChangeFeedLostError` after :attr:`ChangeHub.subscribe_timeout` instead of waiting forever. Either way its
client reconnects and re-queries: the database has every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import structlog
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from service.core.changes import Change, Publish, Topic
from service.core.errors import ConflictError

if TYPE_CHECKING:  # runtime -> upstream -> tenants -> enqueue -> here: a real import would be a cycle
    from service.runtime import NamespacedRedis

log = structlog.get_logger(__name__)

SUBSCRIBERS = Gauge("givfleet_subscriptions_active", "Live GraphQL subscriptions served by this process.")
DROPPED = Counter("givfleet_subscriptions_dropped_total",
                  "Subscriptions ended because their client read changes more slowly than they came.")
SHARED_READS = 1024
"""Changes whose re-reads :meth:`ChangeHub.read` remembers (the oldest are forgotten first)."""

_Read = TypeVar("_Read")


CHANGES = "changes"
"""The pub/sub channel of the deployment's changes (named by :meth:`NamespacedRedis.channel`)."""


async def publish_changes(redis: NamespacedRedis, changes: Sequence[Change]) -> None:
    """Publish ``changes`` (their transaction has committed). A Redis failure is logged, not raised: the
    transaction stands, and live subscribers simply miss these changes."""
    if not changes:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for change in changes:
                pipe.publish(redis.channel(CHANGES), change.encode())
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("changes.publish_failed", changes=len(changes), error=type(exc).__name__)


def publisher(redis: NamespacedRedis) -> Publish:
    """What publishes a committed transaction's changes on ``redis`` (:func:`publish_changes`)."""
    return partial(publish_changes, redis)


class SlowSubscriberError(Exception):
    """The subscriber fell too far behind: its changes were dropped and it must reconnect."""


class ChangeFeedLostError(Exception):
    """The Redis subscription was lost (or could not be made): changes may have been missed, so the subscriber
    must reconnect and re-query."""


class _End:
    """Queued to end a feed: the hub closed or lost Redis, or the subscriber overflowed."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error


class Feed:
    """One subscriber's changes: an async iterator over a bounded queue (see :class:`ChangeHub`)."""

    def __init__(self, tenant_id: uuid.UUID, topics: Collection[Topic], capacity: int) -> None:
        self.tenant_id = tenant_id
        self.topics = frozenset(topics)
        self._queue: asyncio.Queue[Change | _End] = asyncio.Queue(capacity + 1)  # + 1: room for the end
        self._capacity = capacity
        self._ended = False

    def wants(self, change: Change) -> bool:
        """Whether the change is of this feed's tenant and topics."""
        return change.tenant_id == self.tenant_id and change.topic in self.topics

    def offer(self, change: Change) -> None:
        """Queue ``change``; a full queue ends the feed (its pending changes are dropped)."""
        if self._ended:
            return
        if self._queue.qsize() >= self._capacity:
            DROPPED.inc()
            self.end(SlowSubscriberError(f"more than {self._capacity} changes were waiting to be read"))
            return
        self._queue.put_nowait(change)

    def end(self, error: Exception | None = None) -> None:
        """End the feed: the iterator stops (raising ``error`` when given) once it reaches the end."""
        if self._ended:
            return
        self._ended = True
        if error is not None:
            while not self._queue.empty():  # free what a slow reader would never catch up with
                self._queue.get_nowait()
        self._queue.put_nowait(_End(error))

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> Change:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later read ends too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item


class ChangeHub:
    """The API process's live changes, shared by all its subscribers: the :data:`CHANGES` channel's listener on
    the process's Redis subscription (see the module docstring).

    Args:
        capacity: Changes a subscriber may fall behind before it is dropped.
        subscribe_timeout: Longest wait for the channel to be subscribed when a subscriber arrives.
        concurrent_reads: Re-reads of changed rows (:meth:`read`) running at once, for all subscribers.
        per_key: Subscriptions one API key may hold in this process.
    """

    def __init__(self, *, capacity: int = 256, subscribe_timeout: float = 10.0, concurrent_reads: int = 4,
                 per_key: int = 50) -> None:
        self.capacity = capacity
        self.subscribe_timeout = subscribe_timeout
        self.concurrent_reads = concurrent_reads
        self.per_key = per_key
        self._read_gate = asyncio.Semaphore(concurrent_reads)
        self._shared_reads: OrderedDict[int, tuple[Change, dict[Hashable, asyncio.Task[Any]]]] = OrderedDict()
        self._held: Tally[Hashable] = Tally()
        self._feeds: set[Feed] = set()
        self._subscribed = asyncio.Event()
        self._closed = False

    @contextlib.asynccontextmanager
    async def subscribe(self, tenant_id: uuid.UUID, topics: Collection[Topic],
                        holder: Hashable = None) -> AsyncIterator[Feed]:
        """A feed of the tenant's changes of ``topics``, live once this returns (the channel is subscribed).

        Args:
            holder: Who subscribes (an API key's id): one holder has at most :attr:`per_key` feeds at once.

        Raises:
            ConflictError: ``holder`` already has :attr:`per_key` feeds.
            ChangeFeedLostError: The channel was not subscribed within :attr:`subscribe_timeout`.
        """
        if self._closed:
            raise RuntimeError("the change hub is closed")
        if holder is not None and self._held[holder] >= self.per_key:
            raise ConflictError(f"this key already holds {self.per_key} subscriptions on this server: end one first")
        feed = Feed(tenant_id, topics, self.capacity)
        self._feeds.add(feed)
        self._held[holder] += 1
        try:
            try:
                async with asyncio.timeout(self.subscribe_timeout):
                    await self._subscribed.wait()
            except TimeoutError:
                raise ChangeFeedLostError("live changes are unavailable (Redis is unreachable)") from None
            SUBSCRIBERS.inc()  # counted once live: what /metrics shows is being listened for
            try:
                yield feed
            finally:
                SUBSCRIBERS.dec()
        finally:
            self._feeds.discard(feed)
            self._held[holder] -= 1
            if not self._held[holder]:
                del self._held[holder]

    async def read(self, change: Change, scope: Hashable, load: Callable[[], Awaitable[_Read]]) -> _Read:
        """What ``load`` reads of ``change``'s row for ``scope``: loaded once per change this hub dispatched and
        ``scope`` (every subscriber of that scope waits on the same read), at most :attr:`concurrent_reads` loads
        at once. A load's error is every sharer's."""
        shared = self._shared_reads.get(id(change))
        if shared is None or shared[0] is not change:  # keyed by identity: the dispatched change itself
            shared = (change, {})
            self._shared_reads[id(change)] = shared
            while len(self._shared_reads) > SHARED_READS:
                self._shared_reads.popitem(last=False)
        task = shared[1].get(scope)
        if task is None:
            task = asyncio.create_task(self.gated(load))
            task.add_done_callback(_retrieve)
            shared[1][scope] = task
        return cast("_Read", await asyncio.shield(task))  # a sharer that goes away does not cancel the others'

    async def gated(self, load: Callable[[], Awaitable[_Read]]) -> _Read:
        """``load()``, counted among the process's :attr:`concurrent_reads`."""
        async with self._read_gate:
            return await load()

    def close(self) -> None:
        """End every feed (their subscriptions complete) and take no more."""
        self._closed = True
        for feed in list(self._feeds):
            feed.end()

    def live(self) -> None:
        """The channel is subscribed: subscribers are live."""
        self._subscribed.set()

    def receive(self, message: str) -> None:
        """Hand a published change to the feeds that want it."""
        try:
            change = Change.decode(message)
        except ValueError:
            log.warning("changes.malformed_message")
            return
        for feed in list(self._feeds):
            if feed.wants(change):
                feed.offer(change)

    def lost(self) -> None:
        """The subscription is lost: end every feed (what is published until it is back would never reach them)."""
        self._subscribed.clear()
        for feed in list(self._feeds):
            feed.end(ChangeFeedLostError("the live change feed was interrupted: reconnect, then re-query"))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a shared read's outcome as seen (its sharers may all have gone)."""
    if not task.cancelled():
        task.exception()
