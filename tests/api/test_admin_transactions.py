"""The per-request session dependency: commit on success then enqueue deferred jobs; on error, neither."""

from __future__ import annotations

import uuid

import httpx
import pytest
from litestar import Litestar, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath
from sqlalchemy import select

from service.api.dependencies import DbSession, provide_db_session
from service.api.errors import EXCEPTION_HANDLERS
from service.db.models.tenant import Tenant
from service.db.uow import defer_job
from service.jobs.typed import NoPayload
from service.runtime import Resources
from service.worker.heartbeat import heartbeat

pytestmark = pytest.mark.usefixtures("clean_db")


@post("/ok/{slug:str}")
async def write_ok(slug: FromPath[str], db_session: DbSession) -> None:
    db_session.add(Tenant(slug=slug, name=slug))
    defer_job(db_session, heartbeat.call(NoPayload(), key=slug))


@post("/fail/{slug:str}")
async def write_fail(slug: FromPath[str], db_session: DbSession) -> None:
    db_session.add(Tenant(slug=slug, name=slug))
    defer_job(db_session, heartbeat.call(NoPayload(), key=slug))
    await db_session.flush()
    raise RuntimeError("boom after the write")


async def state_of(resources: Resources, slug: str) -> tuple[bool, bool]:
    async with resources.session_factory() as session:
        stored = (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none() is not None
    job_key = f"arq:job:{resources.redis.job_id(heartbeat.name, slug)}"
    queued = bool(await resources.redis.exists(job_key))
    await resources.redis.delete(job_key, resources.redis.queue(heartbeat.queue))
    return stored, queued


async def test_request_commits_then_enqueues_or_rolls_back_and_enqueues_nothing(resources: Resources) -> None:
    app = Litestar(route_handlers=[write_ok, write_fail], state=State({"resources": resources}),
                   dependencies={"db_session": Provide(provide_db_session)}, exception_handlers=EXCEPTION_HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        good, bad = f"ok-{uuid.uuid4().hex[:8]}", f"bad-{uuid.uuid4().hex[:8]}"
        assert (await client.post(f"/ok/{good}")).status_code == 201
        assert (await client.post(f"/fail/{bad}")).status_code == 500
    assert await state_of(resources, good) == (True, True)
    assert await state_of(resources, bad) == (False, False)
