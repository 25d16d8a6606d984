"""The demonstration set-up of ``givfleet up`` on a machine with no GivEnergy credential.

It serves the bundled GivEnergy Cloud simulator next to the API (a lively fleet whose clock runs fast), gives it
a ``demo`` tenant whose credential points at the simulator (printing an admin key the first time), asks for a
first full sync of that tenant and schedules frequent refreshes, so history accumulates while ``up`` runs.
Whether it runs is ``GIVFLEET_SIMULATOR__ENABLED``; by default, while no tenant other than the demo one has a
credential, or while any credential points at the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import uvicorn

from service.core.clock import utcnow
from service.core.tenancy import tenant_id_from
from service.db.models.mirror import SyncKind
from service.jobs.enqueue import unit_of_work
from service.mirror.jobs import request_sync
from service.mirror.service import MirrorService
from service.runtime import Resources
from service.settings import Settings
from service.simulator import Simulator, SimulatorConfig
from service.tenants.demo import DEMO_SLUG, ensure_demo_tenant
from service.tenants.repository import TenantRepository

SIMULATOR_HOST = "127.0.0.1"

DEMO_BEHAVIOUR: dict[str, Any] = {
    "fault_rate_per_day": 2.0,
    "lost_rate_per_day": 0.3,
    "firmware_update_rate_per_day": 0.3,
    "dead_fraction": 0.02,
}
"""A livelier fleet than the real-world defaults, so the demo has inverters in WARNING/ERROR with events, a few
LOST dongles and firmware updates happening while ``givfleet up`` runs."""


@dataclass(frozen=True)
class DemoSimulator:
    """The simulator and the (not yet started) server that serves it."""

    simulator: Simulator
    config: uvicorn.Config
    inverters: int
    """Inverters the demo credential sees (what the demo tenant mirrors)."""

    @property
    def base_url(self) -> str:
        """The v1 base URL the demo credential uses."""
        return f"http://{self.config.host}:{self.config.port}/v1"


def simulator_base_url(settings: Settings) -> str:
    """The v1 base URL of the simulator ``givfleet up`` serves (what the demo credential points at)."""
    return f"http://{SIMULATOR_HOST}:{settings.simulator.port}/v1"


async def simulator_wanted(resources: Resources) -> bool:
    """The setting when given; otherwise, while no tenant but the demo one has a credential, or while any
    credential points at the simulator (the demo's keeps working after a real tenant is added)."""
    enabled = resources.settings.simulator.enabled
    if enabled is not None:
        return enabled
    async with resources.session_factory() as session:
        tenants = TenantRepository(session)
        return (not await tenants.any_credential_outside(DEMO_SLUG)
                or await tenants.any_credential_using(simulator_base_url(resources.settings)))


async def describe_upstreams(resources: Resources) -> str:
    """One line naming the upstream each tenant's credentials use."""
    simulator = simulator_base_url(resources.settings)
    cloud = resources.settings.givenergy.base_url
    async with resources.session_factory() as session:
        upstreams = await TenantRepository(session).credential_base_urls()
    names = {simulator: "the bundled simulator", cloud: "GivEnergy Cloud", None: "GivEnergy Cloud"}
    parts = [f"{slug} -> " + (", ".join(sorted({names.get(url, str(url)) for url in urls})) or "no credential")
             for slug, urls in upstreams.items()]
    return "Upstreams: " + ("; ".join(parts) or "no tenants yet")


def build_simulator(resources: Resources) -> DemoSimulator:
    """Generate the demo fleet (deterministic from the configured seed, so tokens survive restarts)."""
    settings = resources.settings.simulator
    simulator = Simulator(SimulatorConfig(fleet_size=settings.fleet_size, seed=settings.seed,
                                          clock_speed=settings.clock_speed, **DEMO_BEHAVIOUR))
    config = uvicorn.Config(simulator.app, host=SIMULATOR_HOST, port=settings.port, log_config=None,
                            access_log=False, lifespan="on")
    return DemoSimulator(simulator, config, len(simulator.truth.visible_devices("company")))


async def prepare_demo_tenant(resources: Resources, demo: DemoSimulator, announce: Callable[[str], None]
                              ) -> str | None:
    """Create the demo tenant on first use, then ask for a full sync now and schedule the next ones.

    Returns:
        The demo admin key's text when the tenant was created now (print it once), else ``None``.
    """
    admin_key = await ensure_demo_tenant(resources, simulator_base_url=demo.base_url,
                                         token=demo.simulator.tokens["company"])
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
        if tenant is None:  # created above; absent only if someone deleted it meanwhile
            return admin_key
        tenant_id = tenant_id_from(tenant.id)
        full = timedelta(seconds=resources.settings.sync.full_interval_seconds)
        refresh = timedelta(seconds=resources.settings.simulator.refresh_interval_seconds)
        schedule = await MirrorService(session, tenant_id).set_schedule(full_interval=full, refresh_interval=refresh)
        await request_sync(session, tenant_id, SyncKind.FULL)
        now = utcnow()
        schedule.next_full_at, schedule.next_refresh_at = now + full, now + refresh
    announce(f"Simulated GivEnergy Cloud: {demo.base_url} ({demo.inverters} inverters on the demo account); "
             f"demo tenant '{DEMO_SLUG}' is syncing.")
    return admin_key


def banner(api_base: str, admin_key: str | None) -> list[str]:
    """What ``givfleet up`` prints once it serves: the demo admin key in a box, then two requests to try."""
    if admin_key is None:
        lines = ["The demo admin key was shown when the demo tenant was created; for a new one:",
                 f"  KEY=$(givfleet apikey create --tenant {DEMO_SLUG} --role admin | tail -1)"]
        key = "$KEY"
    else:
        title = "Demo admin API key (shown once: store it now)"
        width = max(len(title), len(admin_key)) + 2
        lines = ["╭" + "─" * width + "╮", f"│ {title:<{width - 2}} │", f"│ {admin_key:<{width - 2}} │",
                 "╰" + "─" * width + "╯"]
        key = admin_key
    query = '{"query":"{ fleetSummary { total byStatus { value count } } }"}'
    return [*lines, "Try it:",
            f'  curl -s {api_base}/api/v1/fleet/summary -H "Authorization: Bearer {key}"',
            f'  curl -s {api_base}/graphql -H "Authorization: Bearer {key}" -H \'content-type: application/json\' '
            f"-d '{query}'"]
