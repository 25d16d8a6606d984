"""An API process holds one Redis pub/sub connection, shared by the API-key cache and the live change feed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from redis.asyncio import ConnectionPool

from service.app import create_app
from service.changefeed import ChangeHub
from service.core.changes import Topic
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.runtime import NamespacedRedis, Resources
from service.settings import Settings
from service.subscription import RedisSubscription
from service.tenants.keycache import REVOCATIONS, ApiKeyCache, key_notice
from tests.conftest import running

WAIT = 30  # seconds: a bound on waits that end as soon as what they wait for happens


async def test_an_api_process_hears_revocations_and_changes_on_one_connection(
        test_settings: Settings, resources: Resources) -> None:
    name = f"api-{uuid.uuid4().hex[:12]}"  # the app's connections, told apart from every other client of Redis
    pool = ConnectionPool.from_url(test_settings.configured_redis_url() or "", client_name=name)
    app = create_app(test_settings, replace(
        resources, redis=NamespacedRedis(connection_pool=pool, namespace=resources.redis.namespace)))
    try:
        async with running(app):
            deadline = time.monotonic() + WAIT
            while not app.state.api_keys.subscribed and time.monotonic() < deadline:  # noqa: ASYNC110 - a flag
                await asyncio.sleep(0.01)
            hub: ChangeHub = app.state.changes
            async with hub.subscribe(uuid.uuid4(), {Topic.ALERT}):  # once it returns, changes are listened for
                subscribers = [client for client in await resources.redis.client_list(_type="pubsub")
                               if client["name"] == name]
                assert [client["sub"] for client in subscribers] == ["2"]  # one connection, on both channels
    finally:
        await pool.aclose()


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - a flag, set by another task
        await asyncio.sleep(0.01)
    assert condition()


async def test_a_key_looked_up_while_revocations_went_unheard_is_not_cached_once_they_are_heard_again(
        test_settings: Settings, resources: Resources) -> None:
    """A lookup starts while the subscription is down, the key is revoked (its notice heard by nobody), the
    subscription is made again, then the lookup ends: what it read must not be cached."""
    name = f"keys-{uuid.uuid4().hex[:12]}"
    pool = ConnectionPool.from_url(test_settings.configured_redis_url() or "", client_name=name)
    subscription = RedisSubscription(pool)
    cache = ApiKeyCache(300, subscription)
    subscription.listen(resources.redis.channel(REVOCATIONS), cache)
    subscription.start()
    try:
        await _until(lambda: cache.listening)
        [ours] = [client for client in await resources.redis.client_list(_type="pubsub") if client["name"] == name]
        await resources.redis.execute_command("CLIENT", "KILL", "ID", ours["id"])
        await _until(lambda: not cache.subscribed)
        generation = cache.generation  # the lookup starts, and reads the key while it is still valid
        principal = Principal(tenant_id=TenantId(uuid.uuid4()), role=Role.ADMIN, key_id=uuid.uuid4())
        await resources.redis.publish(resources.redis.channel(REVOCATIONS), key_notice(principal.key_id))
        await _until(lambda: cache.listening)
        cache.put("gvf_presented", principal, None, generation)  # the lookup ends

        assert cache.get("gvf_presented", datetime.now(UTC)) is None
    finally:
        await subscription.aclose()
        await pool.aclose()
