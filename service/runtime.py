"""Process-wide resources (database engine, session factory, Redis) opened once and shared.

The API, the worker and the CLI each open one :class:`Resources` from settings whose URLs are resolved
(see :mod:`service.embedded`). Opening never blocks on the servers being up: connections are made lazily, so
``/readyz`` and ``givfleet doctor`` can report what is unreachable instead of failing at start-up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.db.engine import create_engine, create_session_factory
from service.settings import Settings
from service.upstream import Upstream

OUTAGE_RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of the 503 answered while the database or Redis cannot be reached."""


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` (or what caused it) says that server cannot be reached: an
    outage to answer 503, not a bug. ``None`` for anything else."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RedisConnectionError | RedisTimeoutError | BusyLoadingError):
            return "redis"
        if isinstance(seen, SqlTimeoutError | OperationalError) or (
                isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return "database"
        if isinstance(seen, OSError) and not isinstance(seen, FileNotFoundError | PermissionError):
            # A refused or timed-out connect is a plain OSError from the driver's connect; Redis errors are not
            # OSErrors (they are caught above), so it comes from the database driver.
            return "database"
        seen = seen.__cause__ or seen.__context__
    return None


class NotConfiguredError(RuntimeError):
    """A URL the process needs was neither configured nor resolved to an embedded server."""


class NamespacedRedis(ArqRedis):
    """An arq client that knows the deployment's Redis namespace: queue names, job ids and cron ids carry it, so
    several deployments (or test runs) sharing one Redis never see each other's jobs."""

    def __init__(self, *, connection_pool: ConnectionPool, namespace: str) -> None:
        super().__init__(connection_pool=connection_pool, default_queue_name=f"{namespace}:queue:default")
        self.namespace = namespace

    def queue(self, queue: str) -> str:
        """The Redis name of a worker queue (``control``, ``monitor``, ``bulk``, ``notify``)."""
        return f"{self.namespace}:queue:{queue}"

    def channel(self, name: str) -> str:
        """The Redis name of a pub/sub channel."""
        return f"{self.namespace}:channel:{name}"

    def job_id(self, name: str, key: str | None = None) -> str:
        """The arq job id of job ``name``: unique per ``key`` while queued or running, else a fresh one."""
        return f"{self.namespace}:{name}:{key if key is not None else uuid.uuid4().hex}"


def redis_client(url: str, settings: Settings) -> NamespacedRedis:
    """An arq-capable Redis client that connects on first use, with short connect timeouts."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
    client = NamespacedRedis(connection_pool=pool, namespace=settings.redis.namespace)
    client.auto_close_connection_pool = True  # the pool is the client's own: aclose() disconnects its connections
    return client


@dataclass
class Resources:
    """What every entry point (API, worker, CLI) shares for the life of the process."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: NamespacedRedis
    upstream: Upstream
    """The one way upstream (:mod:`service.upstream`): rate-limited GivEnergy clients per tenant and lane."""

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        """Build the resources named by ``settings`` (which must carry resolved URLs)."""
        database_url = settings.configured_database_url()
        redis_url = settings.configured_redis_url()
        if database_url is None or redis_url is None:
            raise NotConfiguredError("database and Redis URLs must be resolved before opening resources")
        engine = create_engine(database_url, settings.db)
        session_factory = create_session_factory(engine)
        redis = redis_client(redis_url, settings)
        return cls(settings=settings, engine=engine, session_factory=session_factory, redis=redis,
                   upstream=Upstream(settings, redis, session_factory))

    async def aclose(self) -> None:
        """Release connections."""
        await self.redis.aclose()
        await self.engine.dispose()
