"""Running givfleet's processes: the whole stack for ``givfleet up``, or the API or worker alone.

Everything ``up`` starts lives in one process tree: embedded servers (when no URLs are configured), the API
(uvicorn), the worker (arq) and, with no GivEnergy credential, the simulator with a demo tenant (see
:mod:`service.demo`), all in one event loop. SIGINT and SIGTERM stop it all, embedded servers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog
import uvicorn
from arq.worker import Worker

from service import demo
from service.app import create_app
from service.core.signals import cancel_and_wait, stop_on_signals, until_stopped
from service.db import migrate
from service.doctor import resolved_services
from service.embedded import Use, up_lock
from service.jobs.worker import build_worker
from service.observability import configure_logging
from service.runtime import NotConfiguredError, Resources
from service.settings import Settings

log = structlog.get_logger(__name__)


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
        """Migrate, then serve until SIGINT/SIGTERM (which stop it at any point, start-up included)."""
        with stop_on_signals() as stop:
            await until_stopped(stop, asyncio.create_task(self._run(announce), name="givfleet up"))
        announce("givfleet stopped.")

    async def _run(self, announce: Callable[[str], None]) -> None:
        database_url = self.settings.configured_database_url()
        if database_url is None:
            raise NotConfiguredError("run the stack inside resolved_services()")
        await migrate.upgrade(database_url)
        resources = Resources.open(self.settings)
        servers: list[tuple[QuietServer, asyncio.Task[None]]] = []
        try:
            demo_banner: Callable[[str], list[str]] | None = None
            if await demo.simulator_wanted(resources):
                simulator = demo.build_simulator(resources)
                servers.append(await start_server(QuietServer(simulator.config), "simulator"))
                admin_key = await demo.prepare_demo_tenant(resources, simulator, announce)
                demo_banner = functools.partial(demo.banner, admin_key=admin_key)
            announce(await demo.describe_upstreams(resources))
            await self._serve(resources, servers, announce, demo_banner)
        finally:
            for server, task in reversed(servers):
                server.should_exit = True
                await task
            await resources.aclose()

    async def _serve(self, resources: Resources, servers: list[tuple[QuietServer, asyncio.Task[None]]],
                     announce: Callable[[str], None], demo_banner: Callable[[str], list[str]] | None) -> None:
        app_config = uvicorn.Config(create_app(self.settings, resources), host=self.host, port=self.port,
                                    log_config=None, access_log=False, lifespan="on")
        servers.append(await start_server(QuietServer(app_config), "api"))
        worker = build_worker(resources, handle_signals=False)
        base = f"http://{self.host}:{self.port}"
        announce(f"givfleet is up: API {base}/api/v1  GraphQL {base}/graphql  health {base}/readyz  "
                 f"metrics {base}/metrics  docs {base}/schema")
        for line in demo_banner(base) if demo_banner is not None else []:
            announce(line)
        announce("Press Ctrl-C to stop.")
        worker_task = asyncio.create_task(worker.async_run(), name="worker")
        try:  # until cancelled by a signal, or until the worker or a server ends by itself
            await asyncio.wait([worker_task, *(task for _, task in servers)], return_when=asyncio.FIRST_COMPLETED)
        finally:
            log.debug("givfleet.stopping")
            await cancel_and_wait(worker_task)
            await close_worker(worker)


async def close_worker(worker: Worker) -> None:
    """Cancel the worker's running jobs and wait for them (a job's ``CancelledError`` is expected here: its sync
    run stays open and is resumed by the next attempt)."""
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()


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
    """``givfleet up``: the whole stack in this process tree (one per ``GIVFLEET_HOME``)."""
    configure_logging(settings.log)
    with up_lock(settings.home), resolved_services(settings, Use.OWN, require_current_schema=False,
                                                    announce=announce) as resolved:
        asyncio.run(Stack(resolved, host, port).run(announce))


def run_api(settings: Settings, host: str, port: int) -> None:
    """``givfleet api``: the HTTP API alone (uvicorn handles SIGINT/SIGTERM)."""
    configure_logging(settings.log)
    with resolved_services(settings, Use.ATTACH) as resolved:
        uvicorn.run(create_app(resolved), host=host, port=port, log_config=None, access_log=False)


def run_worker(settings: Settings, announce: Callable[[str], None]) -> None:
    """``givfleet worker``: the arq worker alone, until SIGINT/SIGTERM."""
    configure_logging(settings.log)

    async def work(resolved: Settings) -> None:
        resources = Resources.open(resolved)
        worker = build_worker(resources, handle_signals=False)
        try:
            with stop_on_signals() as stop:
                await until_stopped(stop, asyncio.create_task(worker.async_run(), name="worker"), insist=True)
        finally:
            await close_worker(worker)
            await resources.aclose()
        announce("givfleet worker stopped.")

    with resolved_services(settings, Use.ATTACH) as resolved:
        asyncio.run(work(resolved))
