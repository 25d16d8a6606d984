"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from service.db.migrate import head_revision, is_behind, revision_of
from service.runtime import Resources

READINESS_TIMEOUT_SECONDS = 3.0


class HealthController(Controller):
    """``/healthz`` says the process runs; ``/readyz`` says it can serve (database reachable and migrated, Redis
    reachable)."""

    include_in_schema = False

    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, resources: NamedDependency[Resources]) -> Response[dict[str, Any]]:
        """Readiness: 200 when the database answers with every migration this release needs applied and Redis
        answers, else 503 naming what failed (a pod of a new release stays out of the Service until the
        migration has run)."""
        database, redis = await asyncio.gather(_check_database(resources), _check_redis(resources))
        checks = {"database": database, "redis": redis}
        ready = all(result == "ok" for result in checks.values())
        return Response({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


async def _check_database(resources: Resources) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with resources.engine.connect() as connection:
                revision = await connection.run_sync(revision_of)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # readiness reports any failure as data
        return f"unreachable: {type(exc).__name__}"
    if is_behind(revision):
        return (f"not migrated: schema at {revision or 'no revision'}, this release needs {head_revision()} "
                "(run 'givfleet migrate upgrade')")
    return "ok"


async def _check_redis(resources: Resources) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await resources.redis.ping()
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # readiness reports any failure as data
        return f"unreachable: {type(exc).__name__}"
    return "ok"
