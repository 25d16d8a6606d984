"""``givfleet doctor``: the configuration as the process sees it, and whether each dependency answers.

Every problem is reported as one plain line (no traceback), so a misconfigured URL is obvious at a glance. Every
other command checks the same way before it starts (:func:`resolved_services`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.db import migrate
from service.db.engine import create_engine
from service.embedded import (
    EmbeddedServices,
    OrphanedServer,
    StartupError,
    Use,
    orphaned_servers,
    run_dir,
    running_up,
    running_up_api,
)
from service.runtime import Resources, redis_client
from service.settings import Settings, masked_url

CHECK_TIMEOUT_SECONDS = 5.0
T = TypeVar("T")


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
        ("database",
         masked_url(database_url) if database_url else f"embedded PostgreSQL under {settings.home}/pgdata"),
        ("redis", masked_url(redis_url) if redis_url else f"embedded Redis under {settings.home}/redis"),
        ("redis namespace", settings.redis.namespace),
        ("givenergy base URL", f"{masked_url(settings.givenergy.base_url)} (of credentials added without a base URL; "
                               "the `upstreams` check below names each tenant's)"),
        ("api", _api_address(settings)),
    ]


def _api_address(settings: Settings) -> str:
    """Where the API listens: the running ``givfleet up``'s, else the settings' (with where they come from)."""
    running = running_up_api(settings.home)
    if running is not None:
        return f"{running} (where the running givfleet up serves it)"
    return (f"{settings.api.host}:{settings.api.port} (GIVFLEET_API__HOST and GIVFLEET_API__PORT, or their defaults; "
            "givfleet up --host/--port override them)")


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


@contextlib.contextmanager
def resolved_services(settings: Settings, use: Use = Use.ANY, *, require_current_schema: bool = True,
                      announce: Callable[[str], None] = _to_stderr) -> Iterator[Settings]:
    """Settings with working URLs for the duration of the block.

    Embedded servers are attached to, or started and stopped afterwards (see :mod:`service.embedded`); then the
    database and Redis are checked before the caller changes anything.

    Raises:
        StartupError: The servers cannot be used; its message is the one line to show.
    """
    embedded = EmbeddedServices(settings.home, on_wait=announce)
    try:
        resolved = embedded.resolve(settings, use).applied_to(settings)
        problem = asyncio.run(preflight(resolved, require_current_schema=require_current_schema))
        if problem is not None:
            raise StartupError(problem)
        yield resolved
    finally:
        embedded.close()


def diagnose(settings: Settings) -> list[Check]:
    """Check the dependencies, and whether a ``givfleet up`` runs on the home; with no URLs configured, the
    embedded servers are checked when a running ``givfleet up`` serves them (never started here), and named with
    their pid when a killed owner left them running."""
    embedded = EmbeddedServices(settings.home, on_wait=_to_stderr)
    orphans: list[OrphanedServer] = []
    try:
        if run_dir(settings.home).exists():  # a givfleet process has used this home (doctor creates nothing)
            try:
                settings = embedded.resolve(settings, Use.INSPECT).applied_to(settings)
            except StartupError:  # no up serves them: not configured, unless a killed owner left them running
                orphans = orphaned_servers(settings.home, _to_stderr)
        checks = asyncio.run(run_checks(settings))
    finally:
        embedded.close()
    orphaned = _orphans_by_check(settings, orphans)
    checks = [Check(check.name, True, _orphan_detail(orphaned[check.name])) if check.name in orphaned else check
              for check in checks]
    up_pid = running_up(settings.home)
    running = f"running on {settings.home} (pid {up_pid})" if up_pid else f"not running on {settings.home}"
    return [*checks, Check("givfleet up", True, running)]


_CHECK_OF_SERVER = {"PostgreSQL": "database", "Redis": "redis"}
"""The check that reports each embedded server."""


def _orphans_by_check(settings: Settings, orphans: list[OrphanedServer]) -> dict[str, OrphanedServer]:
    """The orphaned servers of the services with no URL configured, by the check that reports them."""
    configured = {"database": settings.configured_database_url(), "redis": settings.configured_redis_url()}
    return {check: orphan for orphan in orphans if configured[check := _CHECK_OF_SERVER[orphan.name]] is None}


def _orphan_detail(orphan: OrphanedServer) -> str:
    return (f"embedded {orphan.name} running (pid {orphan.pid}), left by {orphan.left_by}: the next givfleet "
            "command on this home adopts it (`givfleet up` keeps it running, any other command stops it when it "
            f"ends), or stop it with `kill {orphan.pid}`")


async def run_checks(settings: Settings) -> list[Check]:
    """Check the database and Redis the settings name (embedded ones are reported, not started); once both
    answer, name the upstream each tenant's credentials use."""
    checks = list(await asyncio.gather(check_database(settings), check_redis(settings)))
    if all(check.ok for check in checks) and settings.configured_database_url() and settings.configured_redis_url():
        checks.append(await check_upstreams(settings))
    return checks


async def check_upstreams(settings: Settings) -> Check:
    """The upstream (GivEnergy Cloud, the bundled simulator, another URL) of each tenant's credentials, naming
    the tenants whose credentials are all refused upstream (they cannot sync); it fails when that is givfleet's to
    fix (:attr:`~service.demo.Upstreams.failing`)."""
    from service.demo import describe_upstreams  # not at the top: every command imports this module, few need it

    url = settings.configured_database_url() or ""
    resources = Resources.open(settings)

    async def described() -> Check:
        revision, head = await migrate.current(url)
        if revision != head:  # another release's tables: not this release's business (the database check says why)
            return Check("upstreams", True, "not shown while the database schema is not this release's")
        upstreams = await describe_upstreams(resources)
        return Check("upstreams", not upstreams.failing, str(upstreams))

    return await _ask("upstreams", url, described, resources.aclose)


async def preflight(settings: Settings, *, require_current_schema: bool = True) -> str | None:
    """What is wrong with the database or Redis the (resolved) settings name, in doctor's words on one line;
    ``None`` when both answer. Commands call it before they change anything."""
    checks = await asyncio.gather(check_database(settings, require_current_schema=require_current_schema),
                                  check_redis(settings))
    failed = [f"{check.name}: {check.detail}" for check in checks if not check.ok]
    return "; ".join(failed) or None


async def _ask(name: str, url: str, question: Callable[[], Awaitable[T]],
               close: Callable[[], Awaitable[object]]) -> T | Check:
    """The answer to ``question``, or the failed check when it errs or takes longer than
    :data:`CHECK_TIMEOUT_SECONDS`; ``close`` runs either way."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await question()
    except TimeoutError:
        return Check(name, False, f"no answer from {_where(url)} within {CHECK_TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:  # a doctor reports every failure as a line, never a traceback
        return Check(name, False, f"cannot use {_where(url)}: {_reason(exc)}")
    finally:
        await close()


async def check_database(settings: Settings, *, require_current_schema: bool = True) -> Check:
    """Connect, ask for the server version, and compare the schema revision with the newest migration (a schema
    behind it fails the check unless ``require_current_schema`` is false: ``givfleet up`` migrates it)."""
    url = settings.configured_database_url()
    if url is None:
        return Check("database", True, "not configured: `givfleet up` starts an embedded PostgreSQL")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port or an IPv6 address that does not parse
        return Check("database", False, f"GIVFLEET_DATABASE_URL is not a valid URL: {masked_url(url)!r} "
                                        "(expected postgresql://user:password@host:port/database)")
    if parsed.get_backend_name() != "postgresql":
        return Check("database", False, f"GIVFLEET_DATABASE_URL must point at PostgreSQL, not {parsed.drivername!r}")
    engine = create_engine(url)

    async def versions() -> tuple[str, str | None, str | None]:
        async with engine.connect() as connection:
            version = str((await connection.execute(text("SHOW server_version"))).scalar_one())
        return (version, *await migrate.current(url))

    answer = await _ask("database", url, versions, engine.dispose)
    if isinstance(answer, Check):
        return answer
    version, revision, head = answer
    behind = migrate.is_behind(revision)
    if behind:
        schema = f"at {revision or 'no revision'}, newest is {head}: run `givfleet migrate upgrade`"
    elif revision != head:  # a newer release migrated first (a rolling upgrade): this release still works
        schema = f"at {revision}, newer than this release's {head}"
    else:
        schema = "up to date"
    current = not behind or not require_current_schema
    return Check("database", current, f"PostgreSQL {version} at {_where(url)}; schema {schema}")


async def check_redis(settings: Settings) -> Check:
    """Connect and ask for the server version."""
    url = settings.configured_redis_url()
    if url is None:
        return Check("redis", True, "not configured: `givfleet up` starts an embedded Redis")
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        return Check("redis", False, f"GIVFLEET_REDIS_URL is not a valid URL: {masked_url(url)!r} ({exc}; "
                                     "expected redis://host:port/db)")
    if scheme not in {"redis", "rediss", "unix"}:
        return Check("redis", False, f"GIVFLEET_REDIS_URL is not a Redis URL: {masked_url(url)!r} "
                                     "(expected redis://host:port/db)")
    try:
        client = redis_client(url, settings)
    except ValueError:  # its message may quote part of the password
        return Check("redis", False, f"GIVFLEET_REDIS_URL is invalid: {masked_url(url)!r} "
                                     "(expected redis://[:password@]host:port/db)")
    info = await _ask("redis", url, lambda: client.info("server"), client.aclose)
    if isinstance(info, Check):
        return info
    return Check("redis", True, f"Redis {info.get('redis_version', '?')} at {_where(url)}")


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
