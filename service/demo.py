"""The demonstration set-up of ``givfleet up`` on a machine with no GivEnergy credential.

It serves the bundled GivEnergy Cloud simulator next to the API (a lively fleet whose clock runs fast), gives it
a ``demo`` tenant whose credential points at the simulator (printing an admin key the first time), asks for a
first full sync of that tenant and schedules frequent refreshes, so history accumulates while ``up`` runs.
The simulated clock carries on, from one ``up`` to the next on a home, from where the last one left it (the
mirror, alerts and history it saw persist in the home's database: its times must not go backwards).
Whether it runs is ``GIVFLEET_SIMULATOR__ENABLED``; by default, while no tenant other than the demo one has a
credential, or while any credential points at the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from service.core.clock import utcnow
from service.core.signals import cancel_and_wait
from service.core.tenancy import tenant_id_from
from service.db.models.mirror import SyncKind
from service.embedded import StartupError
from service.jobs.enqueue import unit_of_work
from service.mirror.jobs import request_sync
from service.mirror.service import MirrorService
from service.runtime import Resources
from service.settings import Settings
from service.simulator import Simulator, SimulatorConfig
from service.tenants.demo import DEMO_SLUG, ensure_demo_tenant
from service.tenants.repository import TenantRepository

log = structlog.get_logger(__name__)

SIMULATOR_HOST = "127.0.0.1"
CLOCK_FILE = "demo-clock.json"
"""Under ``GIVFLEET_HOME``: a simulated time the demo clock has not passed (:meth:`DemoSimulator.kept_clock`)."""
CLOCK_CHECKPOINT_SECONDS = 5.0

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

    clock_file: Path
    """Where the simulated time reached is kept (:data:`CLOCK_FILE` in the home)."""

    @property
    def base_url(self) -> str:
        """The v1 base URL the demo credential uses."""
        return f"http://{self.config.host}:{self.config.port}/v1"

    @contextlib.asynccontextmanager
    async def kept_clock(self) -> AsyncIterator[None]:
        """Keep in :attr:`clock_file`, while the block runs, a time the simulated clock cannot have passed (now,
        plus what it covers until the next checkpoint, twice over; written again whenever the side door moves the
        clock or changes its speed), and its time at the end: the next ``up`` on the home starts from there
        (:func:`build_simulator`), even after a ``kill -9``.

        Raises:
            StartupError: The file cannot be written.
        """
        clock = self.simulator.clock

        def bound() -> datetime:
            return clock.now() + timedelta(seconds=2 * CLOCK_CHECKPOINT_SECONDS * clock.speed)

        try:
            self._record(bound())
        except OSError as exc:
            raise StartupError(f"cannot record the demo clock in {self.clock_file}: {exc.strerror}") from None

        def checkpoint() -> None:
            try:
                self._record(bound())
            except OSError as exc:  # e.g. a full disk: the demo goes on; the next up may start a little earlier
                log.warning("demo_clock.not_recorded", path=str(self.clock_file), error=str(exc))

        async def checkpoints() -> None:
            while True:
                await asyncio.sleep(CLOCK_CHECKPOINT_SECONDS)
                checkpoint()

        task = asyncio.create_task(checkpoints(), name="demo clock")
        clock.on_move(checkpoint)
        try:
            yield
        finally:
            clock.on_move(None)
            await cancel_and_wait(task)
            with contextlib.suppress(OSError):  # the last checkpoint, ahead of this time, stays
                self._record(clock.now())

    def _record(self, reached: datetime) -> None:
        staging = self.clock_file.with_suffix(".tmp")
        staging.write_text(json.dumps({"reached": reached.isoformat()}), encoding="utf-8")
        staging.replace(self.clock_file)


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
    """Generate the demo fleet (deterministic from the configured seed, so tokens survive restarts); its clock
    starts now, or where the last ``up`` on the home left it if that is later.

    Raises:
        StartupError: The home's :data:`CLOCK_FILE` cannot be read.
    """
    settings = resources.settings.simulator
    home = resources.settings.home
    home.mkdir(parents=True, exist_ok=True)
    clock_file = home / CLOCK_FILE
    now, reached = datetime.now(UTC).replace(microsecond=0), _reached(clock_file)
    start = now if reached is None else max(now, reached)
    simulator = Simulator(SimulatorConfig(fleet_size=settings.fleet_size, seed=settings.seed, start_time=start,
                                          clock_speed=settings.clock_speed, **DEMO_BEHAVIOUR))
    config = uvicorn.Config(simulator.app, host=SIMULATOR_HOST, port=settings.port, log_config=None,
                            access_log=False, lifespan="on")
    return DemoSimulator(simulator, config, len(simulator.truth.visible_devices("company")), clock_file)


def _reached(clock_file: Path) -> datetime | None:
    """The simulated time an earlier ``up`` on the home recorded, if one did."""
    try:
        reached = datetime.fromisoformat(json.loads(clock_file.read_text(encoding="utf-8"))["reached"])
        if reached.tzinfo is None:
            raise ValueError("a time without a timezone")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StartupError(f"the demo clock file {clock_file} is unreadable ({exc}): delete it, and the demo clock "
                           "starts at the current time") from None
    return reached


async def prepare_demo_tenant(resources: Resources, demo: DemoSimulator, announce: Callable[[str], None]) -> None:
    """Create the demo tenant on first use, then ask for a full sync now and schedule the next ones (its admin
    key is made when ``up`` prints it: :func:`~service.tenants.demo.issue_demo_admin_key`)."""
    await ensure_demo_tenant(resources, simulator_base_url=demo.base_url, token=demo.simulator.tokens["company"])
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
        if tenant is None:  # created above; absent only if someone deleted it meanwhile
            return
        tenant_id = tenant_id_from(tenant.id)
        full = timedelta(seconds=resources.settings.sync.full_interval_seconds)
        refresh = timedelta(seconds=resources.settings.simulator.refresh_interval_seconds)
        schedule = await MirrorService(session, tenant_id).set_schedule(full_interval=full, refresh_interval=refresh)
        await request_sync(session, tenant_id, SyncKind.FULL)
        now = utcnow()
        schedule.next_full_at, schedule.next_refresh_at = now + full, now + refresh
    announce(f"Simulated GivEnergy Cloud: {demo.base_url} ({demo.inverters} inverters on the demo account); "
             f"demo tenant '{DEMO_SLUG}' is syncing.")


def banner(api_base: str, admin_key: str | None) -> list[str]:
    """What ``givfleet up`` prints once it serves: the demo admin key in a box, then two requests to try."""
    if admin_key is None:
        lines = ["The demo admin key was shown by an earlier givfleet up; for a new one:",
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
