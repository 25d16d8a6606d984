"""Reconcile: what upstream says now vs what the mirror holds -> inserts, updates, removals and history.

Pure functions, no I/O: :func:`reconcile` takes the :class:`Snapshot` a sync fetched and the stored rows of
the tenant, and returns exactly the rows to write. Unchanged rows produce nothing (a second sync with no
upstream change writes nothing), except a ``last_seen_at`` refresh once per ``seen_granularity``.

Links between rows (account parent, site -> account, dongle/inverter -> site and account) are resolved here
from upstream keys, and a link to a row the mirror does not know becomes ``None`` rather than a dangling key.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from service.mirror.schemas import (
    KEY_WIDTH,
    AccountRecord,
    DongleRecord,
    Entity,
    InverterChangeKind,
    InverterRecord,
    SiteRecord,
    SiteStatusRecord,
    Snapshot,
)

R = TypeVar("R", bound=tuple[Any, ...])
Device = TypeVar("Device", DongleRecord, InverterRecord)


class Stored(NamedTuple, Generic[R]):
    """A row as the mirror holds it."""

    record: R
    removed: bool
    last_seen_at: datetime


class Change(NamedTuple):
    """One history row of an inverter."""

    inverter_serial: str
    kind: InverterChangeKind
    from_value: str | None
    to_value: str | None


@dataclass(slots=True)
class EntityDiff(Generic[R]):
    """What to write for one entity.

    Attributes:
        inserts: Records never seen before.
        updates: ``(stored, new)`` for rows whose fields changed or that come back after removal.
        removals: Keys of rows no longer upstream (to mark removed).
        seen: Keys of unchanged rows whose ``last_seen_at`` is older than the granularity.
    """

    inserts: list[R] = field(default_factory=list)
    updates: list[tuple[Stored[R], R]] = field(default_factory=list)
    removals: list[Hashable] = field(default_factory=list)
    seen: list[Hashable] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing is to be written."""
        return not (self.inserts or self.updates or self.removals or self.seen)


@dataclass(slots=True)
class Reconciliation:
    """Everything a sync writes: per-entity diffs (in write order), site statuses to set, inverter history."""

    diffs: dict[Entity, EntityDiff[Any]] = field(default_factory=dict)
    site_statuses: list[SiteStatusRecord] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def key_of(entity: Entity, record: tuple[Any, ...]) -> Hashable:
    """The upstream key of a record (a scalar, or a tuple for composite keys)."""
    width = KEY_WIDTH[entity]
    return record[0] if width == 1 else tuple(record[:width])


StoredRows = Mapping[Entity, Mapping[Hashable, Stored[Any]]]


def diff_entity(
    entity: Entity,
    records: Iterable[R] | None,
    stored: Mapping[Hashable, Stored[R]],
    *,
    now: datetime,
    seen_granularity: timedelta,
    removals_allowed: bool = True,
) -> EntityDiff[R]:
    """Compare one entity's upstream records with its stored rows.

    Args:
        entity: Which entity.
        records: Upstream records (duplicates by key: the last wins); ``None`` when not fetched.
        stored: Stored rows by key.
        now: The sync's time.
        seen_granularity: Refresh ``last_seen_at`` of unchanged rows older than this.
        removals_allowed: False when the list may be incomplete: nothing is removed.

    Returns:
        The diff.
    """
    result: EntityDiff[R] = EntityDiff()
    if records is None:
        return result
    upstream: dict[Hashable, R] = {key_of(entity, record): record for record in records}
    stale_before = now - seen_granularity
    for key, record in upstream.items():
        current = stored.get(key)
        if current is None:
            result.inserts.append(record)
        elif current.removed or current.record != record:
            result.updates.append((current, record))
        elif current.last_seen_at < stale_before:
            result.seen.append(key)
    if removals_allowed:
        result.removals = [key for key, row in stored.items() if not row.removed and key not in upstream]
    return result


def _account_depths(accounts: list[AccountRecord]) -> list[AccountRecord]:
    """Fill ``depth`` from the parent chain and order parents before children (FKs hold in every chunk)."""
    parents = {account.upstream_id: account.parent_upstream_id for account in accounts}
    depths: dict[int, int] = {}

    def depth(account_id: int) -> int:
        chain: list[int] = []
        current: int | None = account_id
        while current is not None and current not in depths and current in parents and current not in chain:
            chain.append(current)
            current = parents[current]
        base = depths.get(current, -1) if current is not None else -1
        for offset, member in enumerate(reversed(chain), start=1):
            depths[member] = base + offset
        return depths[account_id]

    resolved = [account._replace(depth=depth(account.upstream_id)) for account in accounts]
    resolved.sort(key=lambda account: (account.depth, account.upstream_id))
    return resolved


@dataclass(frozen=True, slots=True)
class KnownLinks:
    """What link resolution needs of the stored accounts and sites (a refresh loads only this).

    Attributes:
        account_ids: Every stored account id (removed ones too: their rows still exist).
        usernames: Username -> id of the accounts not removed.
        site_accounts: Site id -> its account id, for every stored site.
    """

    account_ids: frozenset[int]
    usernames: Mapping[str, int]
    site_accounts: Mapping[int, int | None]

    @classmethod
    def of(cls, stored: StoredRows) -> KnownLinks:
        """The links of fully loaded stored rows."""
        accounts = stored.get(Entity.ACCOUNTS, {})
        return cls(
            account_ids=frozenset(key for key in accounts if isinstance(key, int)),
            usernames={row.record.username: row.record.upstream_id for row in accounts.values() if not row.removed},
            site_accounts={
                key: row.record.account_upstream_id
                for key, row in stored.get(Entity.SITES, {}).items()
                if isinstance(key, int)
            },
        )


def resolve_links(snapshot: Snapshot, stored: StoredRows, links: KnownLinks | None = None) -> Snapshot:
    """Fill the links upstream leaves implicit and drop links to rows the mirror does not know.

    - account ``parent_upstream_id`` must name a known account; ``depth`` follows from the parent chain;
    - a site's account comes from its ``account`` username;
    - a dongle's and an inverter's account come from their site's account when not given explicitly.

    ``links`` stands in for the stored accounts and sites when they were not loaded (a refresh).
    """
    known = links if links is not None else KnownLinks.of(stored)
    account_ids: set[int] = set(known.account_ids)
    by_username: dict[str, int] = dict(known.usernames)
    if snapshot.accounts is not None:
        fetched = {account.upstream_id for account in snapshot.accounts}
        account_ids |= fetched
        by_username.update({account.username: account.upstream_id for account in snapshot.accounts})
        snapshot.accounts = _account_depths(
            [
                account
                if account.parent_upstream_id is None or account.parent_upstream_id in fetched
                else account._replace(parent_upstream_id=None)
                for account in snapshot.accounts
            ]
        )

    site_account: dict[int, int | None] = dict(known.site_accounts)
    if snapshot.sites is not None:
        sites: list[SiteRecord] = []
        for fetched_site in snapshot.sites:
            name = fetched_site.account_username
            owner = by_username.get(name) if name is not None else None
            sites.append(fetched_site._replace(account_upstream_id=owner))
            site_account[fetched_site.upstream_id] = owner
        snapshot.sites = sites

    def link(device: Device) -> Device:
        account, site = device.account_upstream_id, device.site_upstream_id
        known_site = site if site is not None and site in site_account else None
        if account is None and known_site is not None:
            account = site_account[known_site]
        return device._replace(account_upstream_id=account if account in account_ids else None,
                               site_upstream_id=known_site)

    if snapshot.dongles is not None:
        snapshot.dongles = [link(dongle) for dongle in snapshot.dongles]
    if snapshot.inverters is not None:
        snapshot.inverters = [link(inverter) for inverter in snapshot.inverters]
    return snapshot


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def inverter_changes(diff: EntityDiff[InverterRecord]) -> list[Change]:
    """History rows implied by an inverter diff: status, firmware, account moves, removals and returns."""
    changes: list[Change] = []
    for current, new in diff.updates:
        old = current.record
        if current.removed:
            changes.append(Change(new.serial, InverterChangeKind.RESTORED, None, new.status))
        if old.status != new.status:
            changes.append(Change(new.serial, InverterChangeKind.STATUS, old.status, new.status))
        if old.firmware_arm != new.firmware_arm:
            changes.append(Change(new.serial, InverterChangeKind.FIRMWARE_ARM, old.firmware_arm, new.firmware_arm))
        if old.firmware_dsp != new.firmware_dsp:
            changes.append(Change(new.serial, InverterChangeKind.FIRMWARE_DSP, old.firmware_dsp, new.firmware_dsp))
        if old.account_upstream_id != new.account_upstream_id and old.account_upstream_id is not None:
            changes.append(Change(new.serial, InverterChangeKind.ACCOUNT, _text(old.account_upstream_id),
                                  _text(new.account_upstream_id)))
    return changes


def reconcile(
    snapshot: Snapshot,
    stored: StoredRows,
    *,
    now: datetime,
    seen_granularity: timedelta = timedelta(hours=24),
    site_statuses: Iterable[SiteStatusRecord] | None = None,
    links: KnownLinks | None = None,
) -> Reconciliation:
    """Compute every write a sync makes.

    Args:
        snapshot: What the sync fetched (``None`` members were not fetched and are left alone).
        stored: The tenant's stored rows per entity, by upstream key.
        now: The sync's time.
        seen_granularity: Refresh ``last_seen_at`` of unchanged rows older than this.
        site_statuses: Scheme statuses fetched (approved credentials only); the write stores those that differ.
        links: The stored accounts' and sites' links, when ``stored`` does not hold those entities.

    Returns:
        The reconciliation.
    """
    snapshot = resolve_links(snapshot, stored, links)
    result = Reconciliation()
    for entity in Entity:
        result.diffs[entity] = diff_entity(
            entity,
            snapshot.records(entity),
            stored.get(entity, {}),
            now=now,
            seen_granularity=seen_granularity,
            removals_allowed=entity not in snapshot.incomplete,
        )
    inverters: EntityDiff[InverterRecord] = result.diffs[Entity.INVERTERS]
    result.changes = inverter_changes(inverters)
    stored_inverters = stored.get(Entity.INVERTERS, {})
    for key in inverters.removals:
        row = stored_inverters[key]
        result.changes.append(Change(str(key), InverterChangeKind.REMOVED, row.record.status, None))
    if site_statuses is not None:
        result.site_statuses = list(site_statuses)
    return result
