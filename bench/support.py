"""What the bench scripts share: a database of their own on the given server, and the API in a process of its own.

Import it after the script has put the repository first on ``sys.path`` (see the top of ``bench/graphql.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from pydantic import SecretStr

from service.db import migrate
from service.runtime import Resources
from service.settings import RedisSettings, Settings
from tests.conftest import create_database, drop_database

REPOSITORY = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def bench_database(database_url: str, redis_url: str, stem: str) -> AsyncIterator[Resources]:
    """A fresh, migrated database on ``database_url``'s server and a Redis namespace of its own; both are dropped
    at the end. Yields resources whose settings name them."""
    name = f"givfleet_{stem}_{uuid.uuid4().hex[:10]}"
    url = await create_database(database_url, name)
    home = Path(tempfile.mkdtemp(prefix=f"givfleet-{stem}-"))
    settings = Settings(_env_file=None, home=home, database_url=SecretStr(url),  # type: ignore[call-arg]
                        redis_url=SecretStr(redis_url), redis=RedisSettings(namespace=name))
    resources = Resources.open(settings)
    try:
        await migrate.upgrade(url)
        yield resources
    finally:
        keys = [k async for k in resources.redis.scan_iter(match=f"{name}*")]
        if keys:
            await resources.redis.delete(*keys)
        await resources.aclose()
        await drop_database(database_url, name)


def serve(settings: Settings, command: Sequence[str], port: int,
          extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run ``command`` (an API server on ``port``) configured by environment for ``settings``; return once
    ``/healthz`` answers."""
    database_url, redis_url = settings.configured_database_url(), settings.configured_redis_url()
    env = {**os.environ, "GIVFLEET_DATABASE_URL": str(database_url), "GIVFLEET_REDIS_URL": str(redis_url),
           "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace, "GIVFLEET_HOME": str(settings.home),
           "GIVFLEET_LOG__LEVEL": "WARNING", **(extra_env or {})}
    process = subprocess.Popen(list(command), env=env, cwd=str(REPOSITORY),  # noqa: S603 - our own commands
                               stdout=subprocess.DEVNULL)
    wait_until_ready(process, lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200)
    return process


def wait_until_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], seconds: float = 60) -> None:
    """Return once ``ready()`` holds (an HTTP error counts as not yet); kill ``process`` and raise if it exits or
    ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"{process.args!r} did not start")
        time.sleep(0.2)


def python_tool(name: str) -> str:
    """A console script installed next to this interpreter (``givfleet``, ``uvicorn``)."""
    return str(Path(sys.executable).with_name(name))
