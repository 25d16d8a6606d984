"""The notification jobs (queue ``notify``); every one is idempotent and may run twice (see :mod:`.delivery`).

- ``notifications.relay`` (:class:`TenantPayload`): route a tenant's unrouted events;
- ``notifications.flush`` (:class:`ChannelPayload`): pack a channel's due deliveries into messages;
- ``notifications.send`` (:class:`MessagePayload`): one attempt at a message;
- ``notifications.sweep`` (cron, every minute): ask again for whatever no job carries (events written by other
  domains, retries whose job was lost, attempts whose worker died).

The jobs carry no uniqueness key: two of the same kind at once are harmless (row locks and the attempt lease
decide), and a key could make a job that asks for its own successor join itself instead.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from service.core.tenancy import tenant_id_from
from service.db.uow import DeferredJob
from service.jobs.context import JobContext
from service.jobs.enqueue import enqueue_deferred
from service.jobs.typed import NoPayload, Payload, Queue, job
from service.notifications.delivery import Ask, Notifier
from service.runtime import Resources
from service.tenants.crypto import load_key_ring


class TenantPayload(Payload):
    """A tenant."""

    tenant_id: uuid.UUID


class ChannelPayload(Payload):
    """A channel of a tenant."""

    tenant_id: uuid.UUID
    channel_id: uuid.UUID


class MessagePayload(Payload):
    """A message of a tenant."""

    tenant_id: uuid.UUID
    message_id: uuid.UUID


def build_notifier(resources: Resources) -> Notifier:
    """A notifier using the process's resources (its asks become jobs on the ``notify`` queue)."""

    async def enqueue(asks: list[Ask]) -> None:
        await enqueue_deferred(resources.redis, [call_of(ask) for ask in asks])

    return Notifier(resources.session_factory, resources.upstream, load_key_ring(resources.settings),
                    resources.settings.notifications, enqueue)


def call_of(ask: Ask) -> DeferredJob:
    """The checked job call of an ask."""
    if ask.step == "relay":
        return relay_events.call(TenantPayload(tenant_id=ask.tenant_id), not_before=ask.not_before)
    assert ask.target_id is not None  # noqa: S101 - flush and send always name their target
    if ask.step == "flush":
        return flush_channel.call(ChannelPayload(tenant_id=ask.tenant_id, channel_id=ask.target_id),
                                  not_before=ask.not_before)
    return send_message.call(MessagePayload(tenant_id=ask.tenant_id, message_id=ask.target_id),
                             not_before=ask.not_before)


@job("notifications.relay", queue=Queue.NOTIFY, payload=TenantPayload, max_tries=5, timeout=timedelta(minutes=2),
     keep_result=timedelta(0))  # fmt: skip
async def relay_events(ctx: JobContext, payload: TenantPayload) -> int:
    """Route a tenant's unrouted events; returns how many."""
    return await build_notifier(ctx["resources"]).relay(tenant_id_from(payload.tenant_id))


# A webhook flush also sends the first attempts of up to 100 messages (WEBHOOK_BATCH), a few at once.
@job("notifications.flush", queue=Queue.NOTIFY, payload=ChannelPayload, max_tries=5, timeout=timedelta(minutes=10),
     keep_result=timedelta(0))  # fmt: skip
async def flush_channel(ctx: JobContext, payload: ChannelPayload) -> int:
    """Pack a channel's due deliveries into messages; returns how many deliveries."""
    return await build_notifier(ctx["resources"]).flush(tenant_id_from(payload.tenant_id), payload.channel_id)


# One try per job: a failed attempt is recorded and its retry is a new job at the back-off time.
@job("notifications.send", queue=Queue.NOTIFY, payload=MessagePayload, max_tries=1, timeout=timedelta(minutes=5),
     keep_result=timedelta(0))  # fmt: skip
async def send_message(ctx: JobContext, payload: MessagePayload) -> str | None:
    """One attempt at a message; returns how it ended (``None``: none was due)."""
    status = await build_notifier(ctx["resources"]).send(tenant_id_from(payload.tenant_id), payload.message_id)
    return None if status is None else status.value


@job("notifications.sweep", queue=Queue.NOTIFY, payload=NoPayload, cron=40, max_tries=1)
async def sweep_notifications(ctx: JobContext, payload: NoPayload) -> int:
    """Ask again for the work no job carries (cron job); returns how many jobs were asked for."""
    return await build_notifier(ctx["resources"]).sweep()
