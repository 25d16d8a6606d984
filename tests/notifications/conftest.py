"""Fixtures of the notification tests: a tenant, a driver that runs the notifier's jobs in-process, a webhook
receiver over real HTTP on loopback, and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller

from service.core.clock import utcnow
from service.core.principal import Principal
from service.core.tenancy import TenantId
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEventType
from service.db.uow import take_deferred_jobs
from service.jobs.enqueue import unit_of_work
from service.notifications.delivery import Ask, Notifier
from service.notifications.outbox import record_event
from service.notifications.service import NotificationService
from service.runtime import Resources
from service.settings import NotificationSettings
from service.simulator.web import Receive, Scope, Send
from service.tenants.crypto import load_key_ring
from service.upstream import Upstream
from tests.mirror.conftest import tenant_id  # noqa: F401 - a committed tenant, tables emptied after the test


class Clock:
    """The notifier's time: the wall clock plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class Driver:
    """Runs the jobs a notifier asks for, in-process, as a worker would: each ask once its time has come (asks for
    the same step and target join, as keyed jobs do)."""

    asks: dict[tuple[str, uuid.UUID | None], Ask] = field(default_factory=dict)

    async def enqueue(self, asks: list[Ask]) -> None:
        for ask in asks:
            key = (ask.step, ask.target_id if ask.step != "relay" else ask.tenant_id)
            known = self.asks.get(key)
            if known is None or _earlier(ask, known):
                self.asks[key] = ask

    async def run(self, notifier: Notifier, clock: Callable[[], datetime], *, wait: bool = True,
                  limit_seconds: float = 30.0) -> None:
        """Run due asks until none is left (``wait``: sleeping until later ones fall due, at most
        ``limit_seconds`` in all), or only those due now (``wait=False``)."""
        deadline = asyncio.get_running_loop().time() + limit_seconds
        while self.asks:
            now = clock()
            due = [key for key, ask in self.asks.items() if ask.not_before is None or ask.not_before <= now]
            if not due:
                if not wait:
                    return
                earliest = min(ask.not_before for ask in self.asks.values() if ask.not_before is not None)
                assert asyncio.get_running_loop().time() < deadline, f"still waiting: {list(self.asks.values())}"
                await asyncio.sleep(min(1.0, max(0.01, (earliest - now).total_seconds())))
                continue
            for key in due:
                ask = self.asks.pop(key)
                await _run(notifier, ask)


def _target(payload: dict[str, Any]) -> uuid.UUID | None:
    found = payload.get("channel_id") or payload.get("message_id")
    return uuid.UUID(found) if found else None


def _earlier(ask: Ask, known: Ask) -> bool:
    if ask.not_before is None:
        return True
    return known.not_before is not None and ask.not_before < known.not_before


async def _run(notifier: Notifier, ask: Ask) -> None:
    tenant = TenantId(ask.tenant_id)
    if ask.step == "relay":
        await notifier.relay(tenant)
    elif ask.step == "flush":
        assert ask.target_id is not None
        await notifier.flush(tenant, ask.target_id)
    else:
        assert ask.target_id is not None
        await notifier.send(tenant, ask.target_id)


def loopback_settings(**overrides: Any) -> NotificationSettings:
    """Notification settings that let webhooks reach loopback (the receivers of the tests)."""
    return NotificationSettings(**{"webhook_allowed_networks": ["127.0.0.0/8"], **overrides})


@dataclass
class Harness:
    """A notifier of the test tenant with its driver and clock."""

    resources: Resources
    tenant_id: TenantId
    settings: NotificationSettings
    upstream: Upstream
    clock: Clock = field(default_factory=Clock)
    driver: Driver = field(default_factory=Driver)

    @property
    def notifier(self) -> Notifier:
        return Notifier(self.resources.session_factory, self.upstream, load_key_ring(self.resources.settings),
                        self.settings, self.driver.enqueue, clock=self.clock)

    def service(self, session: Any) -> NotificationService:
        return NotificationService(session, Principal.cli(self.tenant_id), load_key_ring(self.resources.settings),
                                   self.settings)

    async def manage(self, action: Callable[[NotificationService], Any]) -> Any:
        """Run ``action`` on the service in a committed unit of work (its jobs go to the driver, not Redis)."""
        async with self.resources.session_factory() as session:
            async with session.begin():
                result = await action(self.service(session))
            jobs = take_deferred_jobs(session)
        await self.driver.enqueue([Ask(job.name.removeprefix("notifications."),  # type: ignore[arg-type]
                                       uuid.UUID(job.payload["tenant_id"]),
                                       _target(job.payload), job.not_before) for job in jobs])
        return result

    async def alerts(self, serials: list[str], event: str = "PV Over Voltage", *, site: int | Sequence[int] = 1,
                     severity: Severity = Severity.MAJOR) -> list[str]:
        """Record an alert event per serial in the outbox (one committed transaction; ``site`` one for all, or
        cycled through); returns their summaries."""
        sites = [site] if isinstance(site, int) else list(site)
        summaries = [f"{event} on inverter {serial}" for serial in serials]
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            for index, (serial, summary) in enumerate(zip(serials, summaries, strict=True)):
                await record_event(session, self.tenant_id, NotificationEventType.ALERT_RAISED,
                                   f"alert:{uuid.uuid4()}:raised", summary, severity=severity,
                                   inverter_serial=serial, site_upstream_id=sites[index % len(sites)],
                                   now=self.clock())
        return summaries

    async def deliver(self, *, wait: bool = True, limit_seconds: float = 30.0) -> None:
        """Relay the tenant's events and run every job that follows."""
        await self.driver.enqueue([Ask("relay", self.tenant_id)])
        await self.driver.run(self.notifier, self.clock, wait=wait, limit_seconds=limit_seconds)


@pytest.fixture
def harness(resources: Resources, tenant_id: TenantId) -> Harness:  # noqa: F811 - the imported fixture
    """A notifier for the test tenant whose webhooks may reach loopback."""
    # No wait for a GivEnergy slot: a send finding the budget spent is throttled, and its digest keeps growing.
    settings = loopback_settings(webhook_retry_base_seconds=10.0, webhook_timeout_seconds=0.5,
                                 givenergy_max_wait_seconds=0.0)
    return Harness(resources, tenant_id, settings, resources.upstream)


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint over real HTTP: records every request, answers with the scripted statuses (then 204),
    and can hold requests (``hold``) until released."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hold: bool = False
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            part = await receive()
            body += part.get("body", b"")
            if not part.get("more_body"):
                break
        self.received.append(Received({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        if self.hold:
            self.held.set()
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 204
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"" if status == 204 else f"answer {status}".encode()})


@asynccontextmanager
async def served_receiver() -> AsyncIterator[Receiver]:
    """A :class:`Receiver` served by uvicorn on 127.0.0.1 until the block ends."""
    app = Receiver()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    app.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/givfleet"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield app
    finally:
        app.release.set()
        server.should_exit = server.force_exit = True
        await task
        sock.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver over real HTTP on loopback."""
    async with served_receiver() as app:
        yield app


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Any:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in a thread of this process): ``(port, mailbox)``."""
    mailbox = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()
