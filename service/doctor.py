"""``givfleet doctor``: the configuration as the process sees it, and whether each dependency answers.

Every problem is reported as one plain line (no traceback), so a misconfigured URL is obvious at a glance.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.db import migrate
from service.db.engine import create_engine
from service.runtime import redis_client
from service.settings import Settings

CHECK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    """One dependency's verdict."""

    name: str
    ok: bool
    detail: str


def describe_configuration(settings: Settings) -> list[tuple[str, str]]:
    """Rows of (setting, value) with secrets masked."""
    database_url = settings.configured_database_url()
    redis_url = settings.configured_redis_url()
    return [
        ("home", str(settings.home)),
        ("database", _mask(database_url) if database_url else f"embedded PostgreSQL under {settings.home}/pgdata"),
        ("redis", _mask(redis_url) if redis_url else f"embedded Redis under {settings.home}/redis"),
        ("redis namespace", settings.redis.namespace),
        ("givenergy base URL", settings.givenergy.base_url),
        ("api", f"{settings.api.host}:{settings.api.port}"),
    ]


async def run_checks(settings: Settings) -> list[Check]:
    """Check the database and Redis the settings name (embedded ones are reported, not started)."""
    return list(await asyncio.gather(check_database(settings), check_redis(settings)))


async def check_database(settings: Settings) -> Check:
    """Connect, ask for the server version, and compare the schema revision with the newest migration."""
    url = settings.configured_database_url()
    if url is None:
        return Check("database", True, "not configured: `givfleet up` starts an embedded PostgreSQL")
    try:
        parsed = make_url(url)
    except ArgumentError:
        return Check("database", False, f"GIVFLEET_DATABASE_URL is not a valid URL: {_mask(url)!r} "
                                        "(expected postgresql://user:password@host:port/database)")
    if parsed.get_backend_name() != "postgresql":
        return Check("database", False, f"GIVFLEET_DATABASE_URL must point at PostgreSQL, not {parsed.drivername!r}")
    engine = create_engine(url)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with engine.connect() as connection:
                version = (await connection.execute(text("SHOW server_version"))).scalar_one()
            revision, head = await migrate.current(url)
    except TimeoutError:
        return Check("database", False, f"no answer from {_where(url)} within {CHECK_TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:  # a doctor reports every failure as a line, never a traceback
        return Check("database", False, f"cannot use {_where(url)}: {_reason(exc)}")
    finally:
        await engine.dispose()
    schema = "up to date"
    if revision != head:
        schema = f"at {revision or 'no revision'}, newest is {head}: run `givfleet migrate upgrade`"
    return Check("database", revision == head, f"PostgreSQL {version} at {_where(url)}; schema {schema}")


async def check_redis(settings: Settings) -> Check:
    """Connect and ask for the server version."""
    url = settings.configured_redis_url()
    if url is None:
        return Check("redis", True, "not configured: `givfleet up` starts an embedded Redis")
    if urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        return Check("redis", False, f"GIVFLEET_REDIS_URL is not a Redis URL: {_mask(url)!r} "
                                     "(expected redis://host:port/db)")
    try:
        client = redis_client(url, settings)
    except ValueError as exc:
        return Check("redis", False, f"GIVFLEET_REDIS_URL is invalid: {exc}")
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            info = await client.info("server")
    except TimeoutError:
        return Check("redis", False, f"no answer from {_where(url)} within {CHECK_TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:  # a doctor reports every failure as a line, never a traceback
        return Check("redis", False, f"cannot use {_where(url)}: {_reason(exc)}")
    finally:
        await client.aclose()
    return Check("redis", True, f"Redis {info.get('redis_version', '?')} at {_where(url)}")


def _mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _where(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "(socket)"
    return f"{host}:{port}" if port else host


def _reason(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text_[:200]
