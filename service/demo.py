"""The demonstration set-up of ``givfleet up`` on a machine with no GivEnergy credential.

It serves the bundled GivEnergy Cloud simulator next to the API (a lively fleet whose clock runs in real time by
default, so every time givfleet shows agrees with the cloud's), gives it a ``demo`` tenant whose credential points
at the simulator (printing an admin key the first time), asks for a first full sync of that tenant and schedules
frequent refreshes, so history accumulates while ``up`` runs. The simulated cloud carries on, from one ``up`` to
the next on a home, from where the last one left it (a snapshot in the home: settings written, faults and LOST
states, events, firmware, the clock), as the mirror, alerts and campaigns that saw it persist in the home's
database: what it did must not be undone, and its times must not go backwards.
Whether it runs is ``GIVFLEET_SIMULATOR__ENABLED``; by default, while no tenant other than the demo one has a
credential, or while any credential points at the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from service.core.clock import utcnow
from service.core.signals import cancel_and_wait
from service.core.tenancy import tenant_id_from
from service.db.models.credential import CredentialKind, UpstreamCredential
from service.db.models.mirror import SyncKind
from service.embedded import StartupError
from service.jobs.enqueue import unit_of_work
from service.mirror.jobs import request_sync
from service.mirror.service import MirrorService
from service.runtime import Resources
from service.settings import Settings, masked_url
from service.simulator import Simulator, SimulatorConfig, snapshot
from service.tenants.choice import pick_api_token
from service.tenants.demo import DEMO_SLUG, ensure_demo_tenant
from service.tenants.repository import TenantRepository

log = structlog.get_logger(__name__)

SIMULATOR_HOST = "127.0.0.1"
CLOUD_FILE = "demo-cloud.json"
"""Under ``GIVFLEET_HOME``: the simulated cloud as the last ``up`` left it (:meth:`DemoSimulator.kept_cloud`)."""
SNAPSHOT_SECONDS = 30.0
"""How often ``up`` snapshots the simulated cloud when nothing asks sooner."""
CHANGE_SNAPSHOT_SECONDS = 1.0
"""How soon after a request that may change the simulated cloud (a campaign's setting write, a side-door fault)
``up`` snapshots it, and so at most how often while such requests keep coming: about what a ``kill -9`` loses of
them."""
KEPT_BEYOND_HISTORY = timedelta(days=7)
"""How much of its past the demo cloud keeps (fault events that ended, drifts, control calls) beyond the history
a new fleet starts with (a week): older is forgotten at each snapshot, so the snapshot stays about 1 MB."""

DEMO_BEHAVIOUR: dict[str, Any] = {
    "fault_rate_per_day": 2.0,
    "lost_rate_per_day": 0.3,
    "firmware_update_rate_per_day": 0.3,
    "dead_fraction": 0.02,
}
"""A livelier fleet than the real-world defaults, at the demo's real-time clock: on 200 inverters, a new fault
every 3 to 4 minutes (each lasting about two hours, so a few dozen inverters are in WARNING or ERROR at any time),
a connection lost (for about four hours) and a firmware update (a quarter of an hour UPDATING) every 20 to 25
minutes each, and a few inverters LOST for weeks."""


@dataclass(frozen=True)
class DemoSimulator:
    """The simulator and the (not yet started) server that serves it."""

    simulator: Simulator
    config: uvicorn.Config
    inverters: int
    """Inverters the demo credential sees (what the demo tenant mirrors)."""

    cloud_file: Path
    """Where the simulated cloud is kept (:data:`CLOUD_FILE` in the home)."""

    @property
    def base_url(self) -> str:
        """The v1 base URL the demo credential uses."""
        return f"http://{self.config.host}:{self.config.port}/v1"

    @contextlib.asynccontextmanager
    async def kept_cloud(self) -> AsyncIterator[None]:
        """Keep a snapshot of the simulated cloud in :attr:`cloud_file` while the block runs: every
        :data:`SNAPSHOT_SECONDS`, whenever the side door moves the clock or changes its speed, within
        :data:`CHANGE_SNAPSHOT_SECONDS` of a request that may change the world (one snapshot for all that come
        meanwhile; the simulator is served on the block's event loop), and at the end. The
        next ``up`` on the home carries on from it (:func:`build_simulator`), even after a ``kill -9`` (losing
        what changed since the last snapshot); its clock starts no earlier than any time this one may have shown
        (each snapshot names a time the clock cannot pass before the next, twice over, unless it keeps behind the wall
        clock the next ``up`` starts from). Each snapshot is taken on the event loop (what is older than
        :data:`KEPT_BEYOND_HISTORY` forgotten first), then turned into text and written by one thread, in order
        (the loop waits for it only after a move of the clock).

        Raises:
            StartupError: The file cannot be written.
        """
        clock = self.simulator.clock

        def ahead() -> timedelta:
            if clock.speed <= 1 and clock.now() <= datetime.now(UTC):
                return timedelta(0)  # the wall clock the next up starts from keeps ahead of anything it shows
            return timedelta(seconds=2 * SNAPSHOT_SECONDS * clock.speed)

        try:
            _write(self.cloud_file, self._take(ahead()))
        except OSError as exc:
            raise StartupError(f"cannot keep the demo cloud in {self.cloud_file}: {exc.strerror}") from None
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-cloud")

        def not_kept(error: BaseException) -> None:  # e.g. a full disk: the demo goes on; the next up resumes an
            # older snapshot
            log.warning("demo_cloud.not_kept", path=str(self.cloud_file), error=str(error))

        def keep(data: dict[str, Any]) -> None:
            try:
                _write(self.cloud_file, data)
            except Exception as error:  # logged: the demo goes on
                not_kept(error)

        def checkpoint(ahead: Callable[[], timedelta]) -> Future[None]:
            """Take a snapshot and have the writer keep it; a failure to take or to write it is logged."""
            try:
                return writer.submit(keep, self._take(ahead()))
            except Exception as error:  # logged: the demo goes on
                not_kept(error)
                nothing_to_write: Future[None] = Future()
                nothing_to_write.set_result(None)
                return nothing_to_write

        def moved() -> None:  # rare, and written at once: a kill that follows finds the clock's new time
            checkpoint(ahead).result()

        async def checkpoints() -> None:
            while True:
                await asyncio.sleep(SNAPSHOT_SECONDS)
                await asyncio.wrap_future(checkpoint(ahead))

        changed = _Coalesced(CHANGE_SNAPSHOT_SECONDS, lambda: checkpoint(ahead))
        task = asyncio.create_task(checkpoints(), name="demo cloud")
        clock.on_move(moved)
        self.simulator.on_change(changed)
        try:
            yield
        finally:
            clock.on_move(None)
            self.simulator.on_change(None)
            changed.cancel()  # the last snapshot below has what it was for
            await cancel_and_wait(task)
            await asyncio.wrap_future(checkpoint(lambda: timedelta(0)))  # a failure leaves the last one
            writer.shutdown()

    def _take(self, ahead: timedelta) -> dict[str, Any]:
        """A snapshot of the simulated cloud as JSON-ready data, the past it no longer needs forgotten first."""
        simulator = self.simulator
        simulator.forget(simulator.now() - timedelta(days=simulator.config.history_days) - KEPT_BEYOND_HISTORY)
        return snapshot.document(simulator.snapshot(ahead))


class _Coalesced:
    """Calls an action once, a delay after the first of the calls made to it meanwhile (a campaign writing hundreds
    of inverters: one snapshot a second). Called on the event loop it was made on."""

    def __init__(self, delay: float, action: Callable[[], object]) -> None:
        self._delay = delay
        self._action = action
        self._loop = asyncio.get_running_loop()
        self._due: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        if self._due is None:
            self._due = self._loop.call_later(self._delay, self._run)

    def _run(self) -> None:
        self._due = None
        self._action()

    def cancel(self) -> None:
        """Forget the calls not acted on yet."""
        if self._due is not None:
            self._due.cancel()
            self._due = None


def _write(cloud_file: Path, data: dict[str, Any]) -> None:
    """Replace the file with a snapshot, durably: a temporary file readable by its owner only (it holds the
    simulator's tokens), flushed to disk before it takes the file's place, so a power cut leaves the old or the new."""
    staging = cloud_file.with_suffix(".tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(descriptor, 0o600)  # a staging file an older up left has the umask's mode
        file.write(snapshot.dumps(data))
        file.flush()
        os.fsync(descriptor)
    staging.replace(cloud_file)
    directory = os.open(cloud_file.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself
    finally:
        os.close(directory)


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


@dataclass(frozen=True)
class TenantUpstreams:
    """A tenant's upstreams in words, and why it cannot use any of them when every credential is refused."""

    slug: str
    upstreams: str
    has_credentials: bool
    refused: str | None
    """``None`` unless the tenant has credentials and GivEnergy (or the simulator) refused each one when last
    checked: then their health and its message (e.g. ``credential unauthorised: Unauthenticated. ...``)."""

    def __str__(self) -> str:
        return f"{self.slug} -> {self.upstreams}" + (f", {self.refused}" if self.refused else "")


@dataclass(frozen=True)
class Upstreams:
    """The upstream each tenant's credentials use (``up`` announces it, ``givfleet doctor`` checks it)."""

    tenants: list[TenantUpstreams]

    @property
    def refused(self) -> list[TenantUpstreams]:
        """The tenants none of whose credentials is usable."""
        return [tenant for tenant in self.tenants if tenant.refused]

    @property
    def failing(self) -> bool:
        """Whether the refusals stop givfleet itself: the demo tenant's credentials (givfleet's own) are all
        refused, or every tenant with credentials has them all refused (nothing syncs). One customer's revoked
        token does not: that tenant is named (in :attr:`refused`), and the others sync."""
        refused = self.refused
        with_credentials = [tenant for tenant in self.tenants if tenant.has_credentials]
        return bool(refused) and (any(tenant.slug == DEMO_SLUG for tenant in refused)
                                  or len(refused) == len(with_credentials))

    def __str__(self) -> str:
        return "; ".join(map(str, self.tenants)) or "no tenants yet"


async def describe_upstreams(resources: Resources) -> Upstreams:
    """The upstream each tenant's credentials use, naming the tenants whose credentials are all refused."""
    simulator = simulator_base_url(resources.settings)
    cloud = resources.settings.givenergy.base_url
    async with resources.session_factory() as session:
        credentials = await TenantRepository(session).credentials_by_tenant()
    names = {simulator: f"the bundled simulator ({simulator})", cloud: "GivEnergy Cloud", None: "GivEnergy Cloud"}
    return Upstreams([
        TenantUpstreams(slug, ", ".join(sorted({names.get(credential.base_url, masked_url(str(credential.base_url)))
                                                for credential in own})) or "no credential",
                        bool(own), _refused(own))
        for slug, own in credentials.items()])


def _refused(credentials: Sequence[UpstreamCredential]) -> str | None:
    """Why a tenant with credentials has no API token syncs can use (the choice they make), if it has none."""
    if not credentials or pick_api_token(credentials) is not None:
        return None
    tokens = [credential for credential in credentials if credential.kind is CredentialKind.API_TOKEN]
    return ", ".join(f"credential {credential.health.value}: {credential.health_message or 'no message'}"
                     for credential in tokens) or "no API token (a portal login alone does not sync)"


def build_simulator(resources: Resources) -> DemoSimulator:
    """The demo's simulated cloud: the one the last ``up`` on the home left (:data:`CLOUD_FILE`), its clock
    starting now or where that one stopped if later; or, on a new home (or after a snapshot of another fleet), a
    fleet generated from the configured seed (so tokens survive restarts) with a week of history, its clock
    starting now (or where the other fleet's stopped, if later).

    Raises:
        StartupError: The home's :data:`CLOUD_FILE` cannot be read, or does not make a world.
    """
    settings = resources.settings.simulator
    home = resources.settings.home
    home.mkdir(parents=True, exist_ok=True)
    cloud_file = home / CLOUD_FILE
    config = SimulatorConfig(fleet_size=settings.fleet_size, seed=settings.seed, clock_speed=settings.clock_speed,
                             **DEMO_BEHAVIOUR)
    simulator = _kept(cloud_file, config)
    server = uvicorn.Config(simulator.app, host=SIMULATOR_HOST, port=settings.port, log_config=None,
                            access_log=False, lifespan="on")
    return DemoSimulator(simulator, server, len(simulator.truth.visible_devices("company")), cloud_file)


def _kept(cloud_file: Path, config: SimulatorConfig) -> Simulator:
    """The simulated cloud an earlier ``up`` on the home kept if it kept one of this fleet, else a new one."""
    try:
        text = cloud_file.read_text(encoding="utf-8")
        try:
            return Simulator(config, resume=snapshot.from_json(text, config))
        except snapshot.ForeignSnapshotError as exc:
            foreign = exc
    except FileNotFoundError:
        return Simulator(config)
    except (OSError, ValueError) as exc:
        raise _unreadable(cloud_file, str(exc)) from None
    except (LookupError, TypeError) as exc:  # it decodes, but its parts disagree (say, an event of no inverter)
        raise _unreadable(cloud_file, f"inconsistent: {type(exc).__name__}: {exc}") from None
    log.warning("demo_cloud.not_resumed", path=str(cloud_file), reason=str(foreign),
                outcome="a new demo fleet is generated; the file is replaced")
    if foreign.reached is None or foreign.reached <= datetime.now(UTC):
        return Simulator(config)
    return Simulator(replace(config, start_time=foreign.reached))  # its times were shown: none goes backwards


def _unreadable(cloud_file: Path, reason: str) -> StartupError:
    return StartupError(f"the demo cloud snapshot {cloud_file} is unreadable ({reason}): delete it, and the demo "
                        "starts afresh with a newly generated fleet")


async def prepare_demo_tenant(resources: Resources, demo: DemoSimulator, announce: Callable[[str], None]) -> None:
    """Create the demo tenant on first use, then ask for a full sync now and schedule the next ones (its admin
    key is made when ``up`` prints it: :func:`~service.tenants.demo.issue_demo_admin_key`)."""
    simulator = demo.simulator
    await ensure_demo_tenant(resources, simulator_base_url=demo.base_url, token=simulator.tokens["company"],
                             accepts=lambda token: simulator.token(token) is not None)
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
