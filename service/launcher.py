"""Running givfleet's processes: the whole stack for ``givfleet up``, or the API or worker alone.

Everything ``up`` starts lives in one process tree: embedded servers (when no URLs are configured), the API
(uvicorn), the worker (arq) and, with no GivEnergy credential, the simulator with a demo tenant (see
:mod:`service.demo`), all in one event loop. SIGINT and SIGTERM stop it all, embedded servers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog
import uvicorn
from pydantic import SecretStr

from service import demo
from service.api.timeouts import server_options
from service.app import create_app
from service.db import migrate
from service.embedded import EmbeddedServices, ServiceUrls
from service.jobs.typed import Queue
from service.jobs.worker import WorkerGroup, pool_size_for
from service.observability import configure_logging
from service.runtime import NotConfiguredError, Resources
from service.settings import Settings

log = structlog.get_logger(__name__)


def with_urls(settings: Settings, urls: ServiceUrls) -> Settings:
    """A copy of ``settings`` naming the resolved (possibly embedded) database and Redis."""
    return settings.model_copy(
        update={"database_url": SecretStr(urls.database_url), "redis_url": SecretStr(urls.redis_url)}
    )


@contextlib.contextmanager
def resolved_services(settings: Settings) -> Iterator[Settings]:
    """Settings with working URLs for the duration of the block, embedded servers stopped afterwards."""
    embedded = EmbeddedServices(settings.home)
    try:
        urls = embedded.resolve(settings)
        if urls.embedded_database or urls.embedded_redis:
            log.info("embedded_services.ready", postgres=urls.embedded_database, redis=urls.embedded_redis)
        yield with_urls(settings, urls)
    finally:
        embedded.close()


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Stack:
    """What ``givfleet up`` runs: the API and the worker, and the demo simulator when it is wanted."""

    settings: Settings
    host: str
    port: int

    async def run(self, announce: Callable[[str], None]) -> None:
        """Migrate, then serve until SIGINT/SIGTERM."""
        database_url = self.settings.configured_database_url()
        if database_url is None:
            raise NotConfiguredError("run the stack inside resolved_services()")
        await migrate.upgrade(database_url)
        resources = Resources.open(with_worker_pool(self.settings, list(Queue), keep=self.settings.db.pool_size))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        servers: list[tuple[QuietServer, asyncio.Task[None]]] = []
        try:
            if await demo.simulator_wanted(resources):
                simulator = demo.build_simulator(resources)
                servers.append(await start_server(QuietServer(simulator.config), "simulator"))
                await demo.prepare_demo_tenant(resources, simulator, announce)
            await self._serve(resources, servers, stop, announce)
        finally:
            for server, task in reversed(servers):
                server.should_exit = True
                await task
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await resources.aclose()

    async def _serve(self, resources: Resources, servers: list[tuple[QuietServer, asyncio.Task[None]]],
                     stop: asyncio.Event, announce: Callable[[str], None]) -> None:
        app_config = uvicorn.Config(create_app(self.settings, resources), host=self.host, port=self.port,
                                    log_config=None, access_log=False, lifespan="on", **server_options(self.settings))
        servers.append(await start_server(QuietServer(app_config), "api"))
        workers = asyncio.create_task(WorkerGroup(resources, list(Queue)).run(stop), name="workers")
        base = f"http://{self.host}:{self.port}"
        announce(f"givfleet is up: API {base}/api/v1  GraphQL {base}/graphql  health {base}/readyz  "
                 f"metrics {base}/metrics  docs {base}/schema")
        announce("Press Ctrl-C to stop.")
        watched = [workers, *(task for _, task in servers), asyncio.create_task(stop.wait())]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        log.info("givfleet.stopping")
        stop.set()  # the workers finish their jobs within the grace period (or leave them resumable)
        await workers


async def start_server(server: QuietServer, name: str) -> tuple[QuietServer, asyncio.Task[None]]:
    """Start ``server`` and return once it listens (or raise why it could not)."""
    task = asyncio.create_task(server.serve(), name=name)
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
        await asyncio.sleep(0.05)
    if not server.started:
        task.result()  # raises the start-up error, if any
        raise RuntimeError(f"the {name} server did not start (is its port free?)")
    return server, task


def run_up(settings: Settings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """``givfleet up``: the whole stack in this process tree."""
    configure_logging(settings.log)
    with resolved_services(settings) as resolved:
        stack = Stack(resolved, host, port)
        asyncio.run(stack.run(announce))


def run_api(settings: Settings, host: str, port: int) -> None:
    """``givfleet api``: the HTTP API alone (uvicorn handles SIGINT/SIGTERM)."""
    configure_logging(settings.log)
    with resolved_services(settings) as resolved:
        uvicorn.run(create_app(resolved), host=host, port=port, log_config=None, access_log=False,
                    **server_options(resolved))


def with_worker_pool(settings: Settings, queues: list[Queue], *, keep: int = 0) -> Settings:
    """``settings`` with a database pool of ``keep`` connections plus one per job the workers of ``queues`` may
    run at once (``worker.max_jobs`` per queue); ``db.max_overflow`` stays as configured."""
    db = settings.db.model_copy(update={"pool_size": keep + pool_size_for(settings, queues)})
    return settings.model_copy(update={"db": db})


def run_worker(settings: Settings, queues: list[Queue]) -> None:
    """``givfleet worker``: one arq worker per queue in this process, until SIGINT/SIGTERM (then running jobs get
    ``worker.shutdown_grace_seconds`` to finish; those still running are left resumable)."""
    configure_logging(settings.log)

    async def work(resolved: Settings) -> None:
        resources = Resources.open(with_worker_pool(resolved, queues))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker.started", queues=[queue.value for queue in queues], max_jobs=resolved.worker.max_jobs)
        try:
            await WorkerGroup(resources, queues).run(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await resources.aclose()

    with resolved_services(settings) as resolved:
        asyncio.run(work(resolved))
