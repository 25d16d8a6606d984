"""Running givfleet's processes: the whole stack for ``givfleet up``, or the API or worker alone.

Everything ``up`` starts lives in one process tree: embedded servers (when no URLs are configured), the API
(uvicorn), the worker (arq) and, with no GivEnergy credential, the simulator with a demo tenant (see
:mod:`service.demo`), all in one event loop. SIGINT and SIGTERM stop it all, embedded servers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog
import uvicorn

from service import demo
from service.api.timeouts import server_options
from service.app import create_app
from service.core.signals import stop_on_signals, until_stopped
from service.db import migrate
from service.doctor import resolved_services
from service.embedded import StartupError, Use, running_up, up_lock
from service.jobs.typed import Queue
from service.observability import configure_logging
from service.runtime import NotConfiguredError, Resources
from service.settings import Settings
from service.tenants.demo import issue_demo_admin_key
from service.worker.build import WorkerGroup, pool_size_for

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
            await until_stopped(stop, asyncio.create_task(self._run(announce, stop), name="givfleet up"))
        announce("givfleet stopped.")

    async def _run(self, announce: Callable[[str], None], stop: asyncio.Event) -> None:
        database_url = self.settings.configured_database_url()
        if database_url is None:
            raise NotConfiguredError("run the stack inside resolved_services()")
        await migrate.upgrade(database_url)
        resources = Resources.open(with_worker_pool(self.settings, list(Queue), keep=self.settings.db.pool_size))
        servers: list[tuple[QuietServer, asyncio.Task[None]]] = []
        async with contextlib.AsyncExitStack() as demo_cloud:  # its last snapshot is taken once the simulator stops
            try:
                with_demo = await demo.simulator_wanted(resources)
                if with_demo:  # known only now (it depends on the tenants' credentials): its port is checked now
                    refuse_taken_simulator_port(self.settings, self.port)
                    simulator = demo.build_simulator(resources)
                    await demo_cloud.enter_async_context(simulator.kept_cloud())
                    servers.append(await start_server(QuietServer(simulator.config), "simulator"))
                    await demo.prepare_demo_tenant(resources, simulator, announce)
                announce(f"Upstreams: {await demo.describe_upstreams(resources)}")
                await self._serve(resources, servers, announce, with_demo, stop)
            finally:
                for server, task in reversed(servers):
                    server.should_exit = True
                    await task
                await resources.aclose()

    async def _serve(self, resources: Resources, servers: list[tuple[QuietServer, asyncio.Task[None]]],
                     announce: Callable[[str], None], with_demo: bool, stop: asyncio.Event) -> None:
        app_config = uvicorn.Config(create_app(self.settings, resources), host=self.host, port=self.port,
                                    log_config=None, access_log=False, lifespan="on", **server_options(self.settings))
        servers.append(await start_server(QuietServer(app_config), "api"))
        workers = asyncio.create_task(WorkerGroup(resources, list(Queue)).run(stop), name="workers")
        base = f"http://{self.host}:{self.port}"
        # The docs first: the REST base alone answers 404, a poor first click.
        announce(f"givfleet is up: docs {base}/schema  REST {base}/api/v1/...  GraphQL {base}/graphql  "
                 f"health {base}/readyz  metrics {base}/metrics")
        if with_demo:  # the key is made only now, and printed at once: one that was never shown is never made
            for line in demo.banner(base, await issue_demo_admin_key(resources)):
                announce(line)
        announce("Press Ctrl-C to stop.")
        try:  # until cancelled by a signal, or until the workers or a server end by themselves
            await asyncio.wait([workers, *(task for _, task in servers)], return_when=asyncio.FIRST_COMPLETED)
        finally:
            log.debug("givfleet.stopping")
            stop.set()  # the workers finish their jobs within the grace period (or leave them resumable)
            await asyncio.wait([workers])


async def start_server(server: QuietServer, name: str) -> tuple[QuietServer, asyncio.Task[None]]:
    """Start ``server`` and return once it listens (or raise why it could not)."""
    task = asyncio.create_task(_serve(server), name=name)
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
        await asyncio.sleep(0.05)
    if not server.started:
        task.result()  # raises the start-up error, if any
        raise StartupError(f"the {name} server could not listen on {server.config.host}:{server.config.port} "
                           "(is the port still free?)")
    return server, task


async def _serve(server: QuietServer) -> None:
    """``server.serve()``. uvicorn exits the process when it cannot listen (a port taken since ``up`` checked it),
    having logged why; here that ends only this task, and :func:`start_server` says so in one line."""
    with contextlib.suppress(SystemExit):
        await server.serve()


def run_up(settings: Settings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """``givfleet up``: the whole stack in this process tree (one per ``GIVFLEET_HOME``)."""
    configure_logging(settings.log)
    if running_up(settings.home) is None:  # else up_lock names the running up, the likelier holder of the port
        refuse_taken_api_port(host, port)  # before anything is written to the home
    with (up_lock(settings.home, api=f"{host}:{port}"),
          resolved_services(settings, Use.OWN, require_current_schema=False, announce=announce) as resolved):
        asyncio.run(Stack(resolved, host, port).run(announce))


def refuse_taken_simulator_port(settings: Settings, api_port: int) -> None:
    """Check, before ``up`` serves anything, that the demo simulator it is about to start can listen.

    ``up`` checks the API's port before it starts or changes anything; the simulator's only once it knows the
    simulator runs (that depends on the tenants' credentials: with a real one, it does not, and its port may be
    taken by anything).

    Raises:
        StartupError: The port is the API's, or taken (or cannot be listened on); the message names it and what
            changes it.
    """
    if settings.simulator.port == api_port:
        raise StartupError(f"the API and the demo simulator cannot both listen on port {api_port}: --port or "
                           "GIVFLEET_API__PORT, or GIVFLEET_SIMULATOR__PORT, changes one of them")
    _refuse_taken(demo.SIMULATOR_HOST, settings.simulator.port, "the demo simulator's port: GIVFLEET_SIMULATOR__PORT "
                  "changes it, GIVFLEET_SIMULATOR__ENABLED=false turns the simulator off")


def refuse_taken_api_port(host: str, port: int) -> None:
    """Check, before ``up`` or ``api`` starts anything, that the API can listen on ``host:port``.

    Raises:
        StartupError: It cannot (taken, or no such address); the message names it and what changes it.
    """
    _refuse_taken(host, port, "the API's port: --port or GIVFLEET_API__PORT changes it")


def _refuse_taken(host: str, port: int, which: str) -> None:
    """Raise :class:`StartupError` naming ``host:port`` and ``which`` port it is, unless it can be listened on."""
    problem = _cannot_listen(host, port)
    if problem is not None:
        raise StartupError(f"{host}:{port} {problem} ({which})")


def _cannot_listen(host: str, port: int) -> str | None:
    """Why nothing could listen on ``host:port`` now (as uvicorn binds: with SO_REUSEADDR), or ``None``."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot be listened on: {exc.strerror}"
    for family, kind, protocol, _, address in addresses:
        try:
            probe = socket.socket(family, kind, protocol)
        except OSError as exc:
            if exc.errno == errno.EAFNOSUPPORT:  # IPv6 switched off: the server skips that family too
                continue
            return f"cannot be listened on: {exc.strerror}"
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as the server binds it: the IPv4 port is another socket's business
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "is already in use"
                return f"cannot be listened on: {exc.strerror}"
    return None


def run_api(settings: Settings, host: str, port: int) -> None:
    """``givfleet api``: the HTTP API alone (uvicorn handles SIGINT/SIGTERM), once its port is known free."""
    configure_logging(settings.log)
    refuse_taken_api_port(host, port)
    with resolved_services(settings, Use.ATTACH) as resolved:
        uvicorn.run(create_app(resolved), host=host, port=port, log_config=None, access_log=False,
                    **server_options(resolved))


def with_worker_pool(settings: Settings, queues: list[Queue], *, keep: int = 0) -> Settings:
    """``settings`` with a database pool of ``keep`` connections plus one per job the workers of ``queues`` may
    run at once (``worker.max_jobs`` per queue); ``db.max_overflow`` stays as configured."""
    db = settings.db.model_copy(update={"pool_size": keep + pool_size_for(settings, queues)})
    return settings.model_copy(update={"db": db})


def run_worker(settings: Settings, queues: list[Queue], announce: Callable[[str], None]) -> None:
    """``givfleet worker``: one arq worker per queue in this process, until SIGINT/SIGTERM (then running jobs get
    ``worker.shutdown_grace_seconds`` to finish; those still running are left resumable)."""
    configure_logging(settings.log)

    async def work(resolved: Settings) -> None:
        resources = Resources.open(with_worker_pool(resolved, queues))
        log.info("worker.started", queues=[queue.value for queue in queues], max_jobs=resolved.worker.max_jobs)
        try:
            with stop_on_signals() as stop:
                await WorkerGroup(resources, queues).run(stop)
        finally:
            await resources.aclose()
        announce("givfleet worker stopped.")

    with resolved_services(settings, Use.ATTACH) as resolved:
        asyncio.run(work(resolved))
