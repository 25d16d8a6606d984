"""An API process holds one Redis pub/sub connection, shared by the API-key cache and the live change feed."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

from redis.asyncio import ConnectionPool

from service.app import create_app
from service.changefeed import ChangeHub
from service.core.changes import Topic
from service.runtime import NamespacedRedis, Resources
from service.settings import Settings
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
