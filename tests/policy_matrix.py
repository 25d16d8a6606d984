"""The role matrix: run a protected operation as every kind of caller and compare with the allowed/denied table.

Callers (:data:`CALLERS`): ``viewer``, ``operator``, ``admin`` (whole-tenant keys of the home tenant),
``subtree_admin`` (an admin key restricted to an account subtree), ``expired`` and ``revoked`` (admin keys that no
longer work), ``other_tenant`` (an admin key of another tenant, aiming at the home tenant's objects).

Outcomes: ``ALLOWED`` (the operation happened), ``FORBIDDEN`` (403 / GraphQL ``FORBIDDEN``), ``UNAUTHENTICATED``
(401), ``NOT_FOUND`` (404 / ``NOT_FOUND``: another tenant's object is never told apart from a missing one).

Adding an operation (campaigns, monitoring, notifications...): append a :class:`Case` to :data:`CASES` in
``tests/test_policy.py`` with

- ``action``: the :class:`service.policy.Action` its service method authorizes;
- ``allowed``: the callers that may do it, written out by hand (the table is the specification; it is not
  computed from the policy);
- ``call``: ``async (world, caller) -> Outcome`` doing it once over REST or GraphQL. ``world`` gives the HTTP
  client, the caller's headers and fresh targets (``await world.fresh_credential()``, ``fresh_api_key()``) so
  one caller's success never changes what the next one sees; turn the answer into an outcome with
  :func:`rest_outcome` or :func:`graphql_outcome`.

A test checks that every :class:`~service.policy.Action` that guards a write has at least one REST and one
GraphQL case (or is listed as REST-only).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from service.core.clock import utcnow
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.db.models.api_key import ApiKey
from service.db.models.notifications import ChannelKind, MessageState, NotificationMessage
from service.jobs.enqueue import unit_of_work
from service.notifications.service import ChannelSpec, NotificationService
from service.policy import Action
from service.runtime import Resources
from service.tenants.crypto import load_key_ring
from service.tenants.service import ApiKeyService, CredentialService
from tests.tenants.factories import make_key, make_tenant

CALLERS = ("viewer", "operator", "admin", "subtree_admin", "expired", "revoked", "other_tenant")
SUBTREE_ACCOUNT = "4242"


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"


@dataclass
class World:
    """A home tenant with one key per caller, the app's HTTP client, and fresh targets on demand."""

    resources: Resources
    client: httpx.AsyncClient
    tenant_id: TenantId
    keys: dict[str, str]
    token: str
    other_tenant_id: TenantId
    created: list[uuid.UUID] = field(default_factory=list)

    def headers(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[caller]}"}

    async def fresh_credential(self) -> uuid.UUID:
        """A new API-token credential of the home tenant (the simulator's token)."""
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            credential = await CredentialService(session, Principal.cli(self.tenant_id),
                                                 load_key_ring(self.resources.settings)).add(self.token)
        return credential.id

    async def fresh_api_key(self) -> uuid.UUID:
        """A new viewer key of the home tenant."""
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            created = await ApiKeyService(session, Principal.cli(self.tenant_id)).create(name="target",
                                                                                         role=Role.VIEWER)
        return created.key.id

    async def fresh_notification_channel(self) -> uuid.UUID:
        """A new webhook channel of the home tenant."""
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            created = await NotificationService(session, Principal.cli(self.tenant_id),
                                                load_key_ring(self.resources.settings),
                                                self.resources.settings.notifications).create_channel(
                ChannelSpec(ChannelKind.WEBHOOK, f"hook-{uuid.uuid4().hex[:8]}", url="https://hooks.example.com/in"))
        return created.channel.id

    async def fresh_notification_message(self) -> uuid.UUID:
        """A delivered message of a new webhook channel of the home tenant (something to replay)."""
        channel_id = await self.fresh_notification_channel()
        now = utcnow()
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            message = NotificationMessage(tenant_id=self.tenant_id, channel_id=channel_id,
                                          state=MessageState.DELIVERED, event_count=0, attempts=1, failures=0,
                                          plain_fallback=False, next_attempt_at=now, created_at=now, delivered_at=now)
            session.add(message)
            await session.flush()
            return message.id

    async def graphql(self, caller: str, query: str, variables: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/graphql", json={"query": query, "variables": variables},
                                      headers=self.headers(caller))


async def build_world(resources: Resources, client: httpx.AsyncClient, token: str) -> World:
    """The home tenant (with a credential, so syncs can be asked for), another tenant, and every caller's key."""
    keys: dict[str, str] = {}
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        home = await make_tenant(session)
        other = await make_tenant(session)
        for caller, role in (("viewer", Role.VIEWER), ("operator", Role.OPERATOR), ("admin", Role.ADMIN)):
            keys[caller], _ = await make_key(session, home, role)
        keys["subtree_admin"], _ = await make_key(session, home, Role.ADMIN, restricted_account_id=SUBTREE_ACCOUNT)
        keys["expired"], expired_id = await make_key(session, home, Role.ADMIN, expires_at=utcnow() + timedelta(days=1))
        keys["revoked"], revoked_id = await make_key(session, home, Role.ADMIN)
        keys["other_tenant"], _ = await make_key(session, other, Role.ADMIN)
        await CredentialService(session, Principal.cli(home), load_key_ring(resources.settings)).add(token)
        await CredentialService(session, Principal.cli(other), load_key_ring(resources.settings)).add(token)
    async with resources.session_factory() as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == expired_id).values(expires_at=utcnow() - timedelta(1)))
        await session.execute(update(ApiKey).where(ApiKey.id == revoked_id).values(revoked_at=utcnow()))
    return World(resources, client, home, keys, token, other)


def rest_outcome(response: httpx.Response) -> Outcome:
    """The outcome of a REST answer (anything else is a failure of the test)."""
    if 200 <= response.status_code < 300:
        return Outcome.ALLOWED
    known = {401: Outcome.UNAUTHENTICATED, 403: Outcome.FORBIDDEN, 404: Outcome.NOT_FOUND}
    assert response.status_code in known, (response.status_code, response.text)
    return known[response.status_code]


def graphql_outcome(response: httpx.Response, field_name: str) -> Outcome:
    """The outcome of a GraphQL mutation answer (payload ``errors`` or an HTTP 401)."""
    if response.status_code == 401:
        return Outcome.UNAUTHENTICATED
    body = response.json()
    assert "errors" not in body, body
    errors = body["data"][field_name]["errors"]
    if not errors:
        return Outcome.ALLOWED
    codes = {"FORBIDDEN": Outcome.FORBIDDEN, "NOT_FOUND": Outcome.NOT_FOUND}
    assert errors[0]["code"] in codes, errors
    return codes[errors[0]["code"]]


@dataclass(frozen=True)
class Case:
    """One entry point of one protected operation, and who may use it."""

    name: str
    action: Action
    api: str  # "rest" or "graphql"
    allowed: frozenset[str]
    call: Callable[[World, str], Awaitable[Outcome]]
    targets_an_object: bool = True  # other tenants get NOT_FOUND; otherwise they act on their own tenant
    exceptions: dict[str, Outcome] = field(default_factory=dict)  # callers whose outcome the rules above miss

    def expected(self, caller: str) -> Outcome:
        if caller in self.exceptions:
            return self.exceptions[caller]
        if caller in ("expired", "revoked"):
            return Outcome.UNAUTHENTICATED
        if caller == "other_tenant" and self.targets_an_object:
            return Outcome.NOT_FOUND
        if caller == "other_tenant":
            return Outcome.ALLOWED  # an admin of its own tenant
        return Outcome.ALLOWED if caller in self.allowed else Outcome.FORBIDDEN
