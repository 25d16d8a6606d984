"""A worker killed with SIGKILL in the middle of a delivery: every event still reaches every channel, and a
webhook delivered twice carries the same ``webhook-id`` both times."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.db.models.notifications import (
    AttemptStatus,
    ChannelKind,
    DeliveryState,
    NotificationAttempt,
    NotificationDelivery,
)
from service.jobs.enqueue import enqueue_deferred
from service.notifications.delivery import Ask
from service.notifications.jobs import call_of
from service.notifications.service import ChannelSpec
from tests.notifications.conftest import Harness, Receiver, loopback_settings

GIVFLEET = Path(sys.executable).with_name("givfleet")


def text_of(mail: Message) -> str:
    return "".join(str(part.get_payload(decode=True).decode()) for part in mail.walk()  # type: ignore[union-attr]
                   if part.get_content_type() == "text/plain")


async def test_a_worker_killed_mid_delivery_loses_nothing(harness: Harness, receiver: Receiver,
                                                          smtp_server: tuple[int, Any]) -> None:
    port, mailbox = smtp_server
    harness.settings = loopback_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    for spec in (ChannelSpec(ChannelKind.WEBHOOK, "ops", url=receiver.url),
                 ChannelSpec(ChannelKind.EMAIL, "team", email_to=("ops@installer.example",))):
        created = await harness.manage(lambda s, spec=spec: s.create_channel(spec))
        await harness.manage(lambda s, created=created: s.add_rule(created.channel.id, [], None))
    serials = [f"SA00{i}" for i in range(5)]
    summaries = await harness.alerts(serials)
    resources = harness.resources
    await enqueue_deferred(resources.redis, [call_of(Ask("relay", harness.tenant_id))])

    receiver.hold = True
    settings = resources.settings
    env = {**os.environ, "GIVFLEET_DATABASE_URL": settings.configured_database_url() or "",
           "GIVFLEET_REDIS_URL": settings.configured_redis_url() or "",
           "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace, "GIVFLEET_HOME": str(settings.home),
           "GIVFLEET_SIMULATOR__ENABLED": "false",
           "GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
           "GIVFLEET_NOTIFICATIONS__SMTP_HOST": "127.0.0.1", "GIVFLEET_NOTIFICATIONS__SMTP_PORT": str(port),
           "GIVFLEET_NOTIFICATIONS__SMTP_SECURITY": "none"}
    worker = await asyncio.create_subprocess_exec(str(GIVFLEET), "worker", "--queues", "notify", env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.wait_for(receiver.held.wait(), timeout=120)  # a webhook is on the wire
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    receiver.hold = False
    receiver.release.set()  # the receiver saw it, but the worker never learns the answer

    # The sweeper, once the dead attempt's lease has run out, asks for whatever was left.
    harness.clock.offset = timedelta(seconds=harness.settings.lease_seconds + 1)
    await harness.notifier.sweep()
    await harness.driver.run(harness.notifier, harness.clock)

    ids_by_serial: dict[str, set[str]] = defaultdict(set)
    for request in receiver.received:
        ids_by_serial[json.loads(request.body)["data"]["inverter_serial"]].add(request.headers["webhook-id"])
    assert sorted(ids_by_serial) == serials  # every event reached the webhook
    assert len(receiver.received) > len(serials)  # the killed attempt was sent again
    assert all(len(ids) == 1 for ids in ids_by_serial.values())  # a duplicate carries the same webhook-id
    async with resources.session_factory() as session:
        statuses = set((await session.scalars(select(NotificationAttempt.status))).all())
        states = set((await session.scalars(select(NotificationDelivery.state))).all())
    assert AttemptStatus.INTERRUPTED in statuses
    assert states == {DeliveryState.DELIVERED}
    mails = [text_of(message_from_bytes(envelope.content)) for envelope in mailbox.envelopes]
    assert [s for s in summaries if not any(s in mail for mail in mails)] == []  # and every event the mailbox
