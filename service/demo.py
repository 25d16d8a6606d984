"""The demonstration set-up of ``givfleet up`` on a machine with no GivEnergy credential.

It serves the bundled GivEnergy Cloud simulator next to the API, gives it a ``demo`` tenant whose credential
points at the simulator (printing an admin key the first time), asks for a first full sync of that tenant and
schedules the rest. Whether it runs is ``GIVFLEET_SIMULATOR__ENABLED``; by default, while no tenant other than
the demo one has a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import uvicorn

from service.core.clock import utcnow
from service.core.tenancy import tenant_id_from
from service.db.models.mirror import SyncKind
from service.jobs.enqueue import unit_of_work
from service.mirror.jobs import request_sync
from service.mirror.service import MirrorService
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.tenants import ensure_demo_tenant
from service.tenants.demo import DEMO_SLUG
from service.tenants.repository import TenantRepository

SIMULATOR_HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoSimulator:
    """The simulator and the (not yet started) server that serves it."""

    simulator: Simulator
    config: uvicorn.Config

    @property
    def base_url(self) -> str:
        """The v1 base URL the demo credential uses."""
        return f"http://{self.config.host}:{self.config.port}/v1"


async def simulator_wanted(resources: Resources) -> bool:
    """The setting when given; otherwise, whether no tenant but the demo one has a GivEnergy credential."""
    enabled = resources.settings.simulator.enabled
    if enabled is not None:
        return enabled
    async with resources.session_factory() as session:
        return not await TenantRepository(session).any_credential_outside(DEMO_SLUG)


def build_simulator(resources: Resources) -> DemoSimulator:
    """Generate the demo fleet (deterministic from the configured seed, so tokens survive restarts)."""
    settings = resources.settings.simulator
    simulator = Simulator(SimulatorConfig(fleet_size=settings.fleet_size, seed=settings.seed))
    config = uvicorn.Config(simulator.app, host=SIMULATOR_HOST, port=settings.port, log_config=None,
                            access_log=False, lifespan="on")
    return DemoSimulator(simulator, config)


async def prepare_demo_tenant(resources: Resources, demo: DemoSimulator, announce: Callable[[str], None]) -> None:
    """Create the demo tenant on first use, then ask for a full sync now and schedule the next ones."""
    admin_key = await ensure_demo_tenant(resources, simulator_base_url=demo.base_url,
                                         token=demo.simulator.tokens["company"])
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
        if tenant is None:  # created above; absent only if someone deleted it meanwhile
            return
        tenant_id = tenant_id_from(tenant.id)
        intervals = resources.settings.sync
        full = timedelta(seconds=intervals.full_interval_seconds)
        refresh = timedelta(seconds=intervals.refresh_interval_seconds)
        schedule = await MirrorService(session, tenant_id).set_schedule(full_interval=full, refresh_interval=refresh)
        await request_sync(session, tenant_id, SyncKind.FULL)
        now = utcnow()
        schedule.next_full_at, schedule.next_refresh_at = now + full, now + refresh
    announce(f"Simulated GivEnergy Cloud: {demo.base_url} ({resources.settings.simulator.fleet_size} inverters); "
             f"demo tenant '{DEMO_SLUG}' is syncing.")
    if admin_key is not None:
        announce(f"Demo admin API key (shown once): {admin_key}")
    else:
        announce(f"Demo tenant exists; a new key: givfleet apikey create --tenant {DEMO_SLUG} --role admin")
