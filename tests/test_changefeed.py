"""The change hub on the run's Redis: changes reach the feeds of their tenant and topic only, a feed that falls
behind ends with an error instead of growing, losing Redis (a dropped or a silent connection) ends every feed with
an error, and closing the hub ends every feed. Changes are published after commit only, and a failure to publish
never undoes a commit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import ConnectionPool
from sqlalchemy import select

from service.changefeed import CHANGES, ChangeFeedLostError, ChangeHub, SlowSubscriberError, publish_changes
from service.core.changes import Change, Topic
from service.core.errors import ConflictError
from service.db.models.tenant import Tenant
from service.db.uow import defer_change
from service.jobs.enqueue import unit_of_work
from service.runtime import NamespacedRedis, Resources, redis_client
from service.subscription import RedisSubscription
from tests.support import SwallowingProxy, free_port

WAIT = 30  # seconds: a bound on waits that end as soon as what they wait for happens


def change(topic: Topic, tenant_id: uuid.UUID) -> Change:
    return Change(topic, tenant_id, uuid.uuid4(), f"{topic.value}.raised", site_id=7)


@contextlib.asynccontextmanager
async def subscribed_hub(redis: NamespacedRedis, **options: Any) -> AsyncIterator[ChangeHub]:
    """A hub listening to the changes channel on a Redis subscription of its own, as in an API process; closed,
    then unsubscribed, at the end."""
    hub = ChangeHub(**options)
    subscription = RedisSubscription(redis.connection_pool)
    subscription.listen(redis.channel(CHANGES), hub)
    subscription.start()
    try:
        yield hub
    finally:
        hub.close()
        await subscription.aclose()


async def test_feeds_get_their_tenants_changes_of_their_topics_and_a_slow_one_is_dropped(
    resources: Resources,
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    async with (subscribed_hub(resources.redis, capacity=2) as hub, hub.subscribe(mine, {Topic.ALERT}) as alerts,
                hub.subscribe(mine, {Topic.CAMPAIGN}) as campaigns):
        wanted = change(Topic.ALERT, mine)
        await publish_changes(resources.redis, [change(Topic.ALERT, theirs), change(Topic.INCIDENT, mine), wanted])
        assert await anext(alerts) == wanted  # round trip through Redis and JSON, nothing else first

        await publish_changes(resources.redis, [change(Topic.ALERT, mine) for _ in range(3)])
        marker = change(Topic.CAMPAIGN, mine)
        await publish_changes(resources.redis, [marker])
        assert await anext(campaigns) == marker  # the hub has dispatched the three alerts before it
        with pytest.raises(SlowSubscriberError):  # three waiting, room for two: dropped, not grown
            await anext(alerts)

        hub.close()
        with pytest.raises(StopAsyncIteration):  # the other feed ends cleanly
            await anext(campaigns)


def test_a_message_that_is_not_a_change_is_refused() -> None:
    fine = json.loads(change(Topic.ALERT, uuid.uuid4()).encode())
    for data in ("not json", "[1]", json.dumps({**fine, "tenant_id": "x"}), json.dumps({**fine, "site_id": "7"}),
                 json.dumps({**fine, "topic": "weather"}), json.dumps({key: fine[key] for key in ("id", "kind")})):
        with pytest.raises(ValueError, match=r"^not a change message"):
            Change.decode(data)
    assert Change.decode(json.dumps(fine)).encode() == json.dumps(fine)


def unreachable_redis(resources: Resources) -> NamespacedRedis:
    """A client of the run's namespace on a port nothing listens on."""
    return redis_client(f"redis://127.0.0.1:{free_port()}/0", resources.settings)


async def feeds_end_on_loss_then_live_again(resources: Resources, hub: ChangeHub, lose: Callable[[], Awaitable[None]],
                                           mend: Callable[[], None] = lambda: None) -> None:
    """A live feed of ``hub`` ends with :class:`ChangeFeedLostError` once ``lose`` breaks the hub's Redis
    connection; once ``mend`` has repaired it, a new feed is live."""
    tenant_id = uuid.uuid4()
    async with hub.subscribe(tenant_id, {Topic.ALERT}) as feed:
        await lose()
        async with asyncio.timeout(WAIT):
            with pytest.raises(ChangeFeedLostError):  # not a silent gap: the subscriber must re-query
                await anext(feed)
    mend()
    async with hub.subscribe(tenant_id, {Topic.ALERT}) as feed:  # the hub subscribed again
        wanted = change(Topic.ALERT, tenant_id)
        await publish_changes(resources.redis, [wanted])
        async with asyncio.timeout(WAIT):
            assert await anext(feed) == wanted


async def test_when_the_hub_loses_its_redis_connection_every_feed_ends_and_later_ones_are_live_again(
    resources: Resources,
) -> None:
    name = f"hub-{uuid.uuid4().hex[:12]}"  # the hub's connections, told apart from every other client of Redis
    pool = ConnectionPool.from_url(resources.settings.configured_redis_url() or "", client_name=name)

    async def kill_its_connections() -> None:
        killed = [client["id"] for client in await resources.redis.client_list() if client["name"] == name]
        assert killed
        for client_id in killed:
            await resources.redis.client_kill_filter(_id=client_id)

    try:
        async with subscribed_hub(NamespacedRedis(connection_pool=pool, namespace=resources.redis.namespace)) as hub:
            await feeds_end_on_loss_then_live_again(resources, hub, kill_its_connections)
    finally:
        await pool.aclose()


async def test_a_feed_whose_redis_connection_falls_silent_ends_and_later_ones_are_live_again(
    resources: Resources,
) -> None:
    """The connection dies without a reset (a proxy or network swallowing packets): the feeds must end with an
    error (the hub hears nothing more, not even its pings answered), not wait forever for changes."""
    redis_at = resources.redis.connection_pool.connection_kwargs
    async with SwallowingProxy(redis_at) as proxy:
        pool = proxy.pools(**redis_at)

        async def swallow() -> None:
            proxy.swallowing = True

        def heal() -> None:
            proxy.swallowing = False

        try:
            async with subscribed_hub(NamespacedRedis(connection_pool=pool, namespace=resources.redis.namespace),
                                      subscribe_timeout=WAIT) as hub:  # a new connection may wait out a timeout
                await feeds_end_on_loss_then_live_again(resources, hub, swallow, heal)
        finally:
            await pool.aclose()


async def test_a_subscriber_is_refused_rather_than_left_waiting_while_redis_is_unreachable(
    resources: Resources,
) -> None:
    redis = unreachable_redis(resources)
    try:
        async with subscribed_hub(redis, subscribe_timeout=0.2) as hub:
            with pytest.raises(ChangeFeedLostError, match="unavailable"):
                async with hub.subscribe(uuid.uuid4(), {Topic.ALERT}):
                    pytest.fail("subscribed without Redis")
    finally:
        await redis.aclose()


@pytest.mark.usefixtures("clean_db")
async def test_a_rolled_back_transaction_publishes_nothing_and_a_failed_publish_keeps_the_commit(
    resources: Resources,
) -> None:
    tenant_id = uuid.uuid4()
    async with subscribed_hub(resources.redis) as hub, hub.subscribe(tenant_id, {Topic.ALERT}) as feed:
        rolled_back, committed = change(Topic.ALERT, tenant_id), change(Topic.ALERT, tenant_id)

        async def failing_transaction() -> None:
            async with unit_of_work(resources.session_factory, resources.redis) as session:
                defer_change(session, rolled_back)
                raise RuntimeError("the transaction fails")

        with pytest.raises(RuntimeError):
            await failing_transaction()
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            defer_change(session, committed)
        async with asyncio.timeout(WAIT):
            assert await anext(feed) == committed  # and nothing before it

    redis = unreachable_redis(resources)
    try:
        async with unit_of_work(resources.session_factory, redis) as session:  # the publish fails after commit
            tenant = Tenant(slug=f"t-{uuid.uuid4().hex[:8]}", name="Published nowhere")
            session.add(tenant)
            await session.flush()
            defer_change(session, change(Topic.ALERT, tenant.id))
    finally:
        await redis.aclose()
    async with resources.session_factory() as session:
        assert await session.scalar(select(Tenant.name).where(Tenant.id == tenant.id)) == "Published nowhere"


async def test_subscribers_of_one_scope_share_each_re_read_and_re_reads_are_bounded(resources: Resources) -> None:
    tenant_id = uuid.uuid4()
    loads: list[str] = []
    in_flight = most_in_flight = 0

    def loader(scope: str) -> Callable[[], Awaitable[str]]:
        async def load() -> str:
            nonlocal in_flight, most_in_flight
            loads.append(scope)
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            for _ in range(3):  # let every other read start, if nothing stops it
                await asyncio.sleep(0)
            in_flight -= 1
            return f"{scope} row"
        return load

    async with (subscribed_hub(resources.redis, concurrent_reads=1) as hub,
                hub.subscribe(tenant_id, {Topic.ALERT}) as one, hub.subscribe(tenant_id, {Topic.ALERT}) as two):
        sent = change(Topic.ALERT, tenant_id)
        await publish_changes(resources.redis, [sent, sent])  # the same change, announced twice
        async with asyncio.timeout(WAIT):
            first = [await anext(one), await anext(two)]
            again = [await anext(one), await anext(two)]
        reads = [hub.read(seen, scope, loader(scope)) for seen in first for scope in ("whole", "subtree")]
        assert await asyncio.gather(*reads) == ["whole row", "subtree row"] * 2
        assert sorted(loads) == ["subtree", "whole"]  # one read per change and scope, not per subscriber
        assert most_in_flight == 1
        assert await hub.read(again[0], "whole", loader("whole")) == "whole row"
        assert loads.count("whole") == 2  # a later announcement is read again, however alike


async def test_a_key_holds_at_most_its_share_of_subscriptions(resources: Resources) -> None:
    tenant_id = uuid.uuid4()
    async with subscribed_hub(resources.redis, per_key=2) as hub:
        async with hub.subscribe(tenant_id, {Topic.ALERT}, holder="key"), \
                hub.subscribe(tenant_id, {Topic.INCIDENT}, holder="key"):
            with pytest.raises(ConflictError, match="already holds 2 subscriptions"):
                async with hub.subscribe(tenant_id, {Topic.CAMPAIGN}, holder="key"):
                    pytest.fail("a third subscription")
            async with hub.subscribe(tenant_id, {Topic.CAMPAIGN}, holder="another key"):
                pass
        async with hub.subscribe(tenant_id, {Topic.CAMPAIGN}, holder="key"):  # ended ones free their place
            pass
