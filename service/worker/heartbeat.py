"""A trivial job proving the wiring end to end: Redis queue -> worker -> database."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import TypedDict

from sqlalchemy import func, select

from service.jobs.context import JobContext
from service.jobs.typed import NoPayload, Queue, job


class HeartbeatResult(TypedDict):
    """What ``system.heartbeat`` returns."""

    worker: str
    database_time: datetime
    job_try: int


@job("system.heartbeat", queue=Queue.CONTROL, payload=NoPayload, max_tries=1)
async def heartbeat(ctx: JobContext, payload: NoPayload) -> HeartbeatResult:
    """Ask the database for its clock from inside a worker; the result shows which worker answered."""
    async with ctx["resources"].session_factory() as session:
        database_time = (await session.execute(select(func.now()))).scalar_one()
    return HeartbeatResult(worker=socket.gethostname(), database_time=database_time, job_try=ctx.get("job_try", 1))
