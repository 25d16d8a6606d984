"""Fixtures of the GivEnergy client tests: a Redis limiter per test, a recording mock transport."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from service.givenergy import RateLimiter

TOKEN = "tok-SUPERSECRET-123"


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """``TEST_REDIS_URL`` when set (no PostgreSQL is needed here), else the shared fixture's Redis."""
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        return configured
    return str(request.getfixturevalue("server_urls")[1])


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A Redis client for one test."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def limiter(redis: Redis, redis_namespace: str) -> AsyncIterator[RateLimiter]:
    """A limiter whose keys are unique to this test and deleted after it."""
    namespace = f"{redis_namespace}:{uuid.uuid4().hex[:8]}"
    yield RateLimiter(redis, namespace=namespace, safety_margin_seconds=0.05)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
    if keys:
        await redis.delete(*keys)


@dataclass
class Recorder:
    """A MockTransport that records requests and answers from a list of canned responses or a handler."""

    handler: Callable[[httpx.Request], httpx.Response]
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.handler(request)

        return httpx.MockTransport(handle)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def respond(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response."""
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering the given responses (or raising the given exceptions) in order, then the last."""
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handle
