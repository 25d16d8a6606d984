"""PostGraphile 4.14 as the peer of ``bench/graphql.py --against-postgraphile``: installed with npm into a cache
folder on first use, served over one tenant's mirror tables of the bench database.

Tenant scoping: PostGraphile connects as a login role of its own (created for the run, dropped at the end) that
may only ``SELECT`` the ``mirror_*`` tables; row-level security on those tables lets that role see the rows of
one tenant only (``tenant_id = <the tenant>``). givfleet's own connections (the database owner) bypass the
policies, so both servers read the very same tables and indexes. PostGraphile runs with ``--no-ignore-rbac``
(so it exposes only what the role may read), without mutations, in production mode, as one Node process.

Import it after the script has put the repository first on ``sys.path`` (see the top of ``bench/graphql.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.support import free_port, wait_until_ready

VERSION = "~4.14.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "givfleet-bench" / "postgraphile"
MIRROR_TABLES = ("mirror_accounts", "mirror_sites", "mirror_dongles", "mirror_inverters", "mirror_battery_modules",
                 "mirror_meters", "mirror_inverter_changes")


def installed() -> Path:
    """The ``postgraphile`` command, installed with npm into :data:`CACHE` the first time."""
    command = CACHE / "node_modules" / ".bin" / "postgraphile"
    if not command.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("--against-postgraphile needs Node.js and npm on PATH")
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"installing PostGraphile {VERSION} into {CACHE} ...", flush=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),  # noqa: S603
                        f"postgraphile@{VERSION}"], check=True, stdout=subprocess.DEVNULL)
    return command


@asynccontextmanager
async def tenant_role(engine: AsyncEngine, tenant_id: uuid.UUID) -> AsyncIterator[str]:
    """A login role that reads the mirror tables of ``tenant_id`` only (row-level security); yields a connection
    URL for it. The role is dropped at the end (its grants and policies go with the database)."""
    role = f"givfleet_bench_pg_{uuid.uuid4().hex[:10]}"
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        await connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        for table in MIRROR_TABLES:
            await connection.execute(text(f'GRANT SELECT ON {table} TO "{role}"'))
            await connection.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
            await connection.execute(text(f'CREATE POLICY "{role}_tenant" ON {table} FOR SELECT TO "{role}" '
                                          f"USING (tenant_id = '{tenant_id}'::uuid)"))
    url = make_url(engine.url.render_as_string(hide_password=False)).set(drivername="postgresql", username=role,
                                                                         password=None)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        async with engine.begin() as connection:
            for table in MIRROR_TABLES:
                await connection.execute(text(f'DROP POLICY IF EXISTS "{role}_tenant" ON {table}'))
                await connection.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
            await connection.execute(text(f'DROP OWNED BY "{role}"'))
            await connection.execute(text(f'DROP ROLE "{role}"'))


def serve(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """PostGraphile over ``database_url`` in one Node process on loopback; returns once it answers."""
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production"}
    process = subprocess.Popen([str(installed()), "--connection", database_url, "--schema", "public",  # noqa: S603
                                "--host", "127.0.0.1", "--port", str(port), "--no-ignore-rbac",
                                "--disable-default-mutations", "--disable-query-log"],
                               env=env, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, lambda: httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"},
                                                 timeout=2).status_code == 200, seconds=120)
    return process, base_url
