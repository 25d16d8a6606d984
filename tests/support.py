"""Small helpers shared by tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from service.simulator import Simulator, SimulatorConfig
from service.simulator.server import server as simulator_server


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
