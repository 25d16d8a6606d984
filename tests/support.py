"""Small helpers shared by tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psutil
from redis.asyncio import ConnectionPool

from service.simulator import Simulator, SimulatorConfig
from service.simulator.server import server as simulator_server

EMBEDDED_OWNER = """
import sys
from pathlib import Path
from service.embedded import EmbeddedServices, Use
from service.settings import Settings

home = Path(sys.argv[1])
EmbeddedServices(home).resolve(Settings(_env_file=None, home=home), Use.OWN)
print("serving", flush=True)
sys.stdin.read()
"""
"""Starts the embedded servers of the home it is given (those the environment configures no URL for) as
`givfleet up` does, then waits to be killed."""


def alive(pid: int) -> bool:
    """The process runs (a zombie left where PID 1 does not reap has exited)."""
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return False
    return status != psutil.STATUS_ZOMBIE


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def served_simulator(config: SimulatorConfig) -> Iterator[tuple[str, Simulator, threading.Event]]:
    """A simulator served over HTTP from a thread: (its v1 base URL, the simulator, an event set by the first
    request it receives)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections wait in the backlog until uvicorn accepts them: no start-up race
    port = listener.getsockname()[1]
    simulator, server = simulator_server(config, port=port)
    asked = threading.Event()
    inner = server.config.app

    async def noticing(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asked.set()
        await inner(scope, receive, send)

    server.config.app = noticing
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1", simulator, asked
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


class SwallowingProxy:
    """A TCP proxy to Redis that can be switched to swallow every byte both ways without closing anything: a
    connection that died silently (a dropped NAT entry, a proxy that lost its peer). It reaches Redis where a pool's
    connection options say: host and port, or the unix socket of the embedded Redis."""

    def __init__(self, redis_at: dict[str, Any]) -> None:
        self._path: str | None = redis_at.get("path")
        self._address: tuple[str, int] = (redis_at.get("host", ""), redis_at.get("port", 0))
        self.swallowing = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SwallowingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._path is not None:
            server_reader, server_writer = await asyncio.open_unix_connection(self._path)
        else:
            server_reader, server_writer = await asyncio.open_connection(*self._address)
        await asyncio.gather(self._pump(client_reader, server_writer), self._pump(server_reader, client_writer),
                             return_exceptions=True)
        for writer in (client_writer, server_writer):
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.swallowing:
                writer.write(data)
                await writer.drain()

    def pools(self, **options: Any) -> ConnectionPool:
        """A Redis connection pool made with ``options`` (a pool's connection options, TCP or unix socket), whose
        connections go over TCP through this proxy (to patch over ``ConnectionPool`` where a component makes its
        own pool)."""
        tcp = {name: value for name, value in options.items()
               if name not in ("host", "port", "path", "connection_class")}
        return ConnectionPool(**tcp, host="127.0.0.1", port=self.port)
