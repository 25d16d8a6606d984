"""Changes worth telling live subscribers about: an alert, an incident or a campaign changed.

A :class:`Change` names the row that changed (never its content): a subscriber re-reads the row through its own
read scope, so what it receives is exactly what a query with its key would show. Changes are deferred on the
transaction that made them (:func:`service.db.uow.defer_change`) and published once it has committed
(:mod:`service.changefeed`).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class Topic(enum.StrEnum):
    """What changed."""

    ALERT = "alert"
    INCIDENT = "incident"
    CAMPAIGN = "campaign"


@dataclass(frozen=True)
class Change:
    """One changed row of one tenant.

    Attributes:
        topic: The kind of row.
        tenant_id: Whose row it is (subscribers of other tenants never see it).
        id: The row's id.
        kind: What happened, e.g. ``"alert.raised"``, ``"incident.updated"``, ``"campaign.progress"``.
        site_id: The row's site (upstream id), when it has one: lets a subscriber of one site skip the others
            unread.
    """

    topic: Topic
    tenant_id: uuid.UUID
    id: uuid.UUID
    kind: str
    site_id: int | None = None

    def encode(self) -> str:
        """The change as a JSON message."""
        return json.dumps({"topic": self.topic.value, "tenant_id": str(self.tenant_id), "id": str(self.id),
                           "kind": self.kind, "site_id": self.site_id})

    @classmethod
    def decode(cls, data: str | bytes) -> Change:
        """The change in a JSON message of :meth:`encode`.

        Raises:
            ValueError: Not such a message.
        """
        try:
            fields = json.loads(data)
            return cls(topic=Topic(fields["topic"]), tenant_id=uuid.UUID(fields["tenant_id"]),
                       id=uuid.UUID(fields["id"]), kind=str(fields["kind"]), site_id=_int(fields.get("site_id")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a change message: {exc}") from exc


Publish = Callable[[list["Change"]], Awaitable[object]]
"""Announces the changes of a committed transaction to live subscribers (``functools.partial(
service.changefeed.publish_changes, redis)`` in production)."""


def _int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
