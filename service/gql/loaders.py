"""Per-request dataloaders: one batched statement per relation per request, all on the operation's read
session (:class:`service.gql.context.RequestReads`: batches take turns on its one connection).

Every caller of a loader gets a future of its own (:class:`IsolatedLoader`): graphql-core cancels the pending
siblings of a field that fails, and cancelling a future shared with another field (two objects at the same
site) would hand that other field a ``CancelledError`` instead of its row.

Loaders hand out GraphQL objects (converted once per batch), so a relation resolver can return the loader's
future as is: graphql-core awaits it, and no coroutine is created per row (see
:func:`service.gql.mirror.types.deferred`).
To-one loaders return a row whatever its ``removed_at`` (an inverter still names the site it was at);
to-many loaders return the rows still present upstream.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import InstrumentedAttribute
from strawberry.dataloader import DataLoader

from service.campaigns.service import history as campaign_history
from service.core.limits import MAX_HISTORY
from service.db.models import mirror as m
from service.db.models.monitoring import AlertState, Severity
from service.gql.campaigns.types import CampaignHistoryEntry
from service.gql.context import RequestReads
from service.gql.mirror import types as t
from service.gql.monitoring.types import Alert, Incident
from service.mirror.queries import FleetReader, ReadScope, present_first
from service.monitoring.service import alerts_of_inverters, open_incidents_of_sites

K = TypeVar("K")
R = TypeVar("R")
AlertKey = tuple[str, tuple[AlertState, ...], tuple[Severity, ...], int]
"""An inverter's serial, the states and severities asked for (empty: any), at most how many alerts."""
T = TypeVar("T")
Capped = DataLoader[tuple[Any, int], list[T]]
"""A to-many loader keyed by (key, at most how many rows) (:meth:`Loaders._capped`)."""


class IsolatedLoader(DataLoader[K, T]):
    """A dataloader whose callers each await their own future: cancelling one (graphql-core does, when a
    sibling field fails) leaves the shared, cached load and every other caller of the same key untouched."""

    def load(self, key: K) -> Awaitable[T]:
        shared = super().load(key)
        return asyncio.shield(shared)  # the shared future itself once it is done (nothing left to cancel)


class Loaders:
    """The dataloaders of one request, all bound to the caller's scope."""

    def __init__(self, reads: RequestReads, scope: ReadScope, now: datetime) -> None:
        self._reads = reads
        self.scope = scope
        self.now = now
        self.account_by_upstream_id = self._one(m.FleetAccount, m.FleetAccount.upstream_id, t.Account.from_row)
        self.accounts_by_parent: Capped[t.Account] = self._capped(
            m.FleetAccount, m.FleetAccount.parent_upstream_id, t.Account.from_row, m.FleetAccount.username)
        self.site_by_upstream_id = self._one(m.Site, m.Site.upstream_id, t.Site.from_row)
        self.sites_by_account: Capped[t.Site] = self._capped(m.Site, m.Site.account_upstream_id, t.Site.from_row,
                                                             m.Site.upstream_id)
        self.dongle_by_serial = self._one(m.Dongle, m.Dongle.serial, t.Dongle.from_row)
        self.dongles_by_account: Capped[t.Dongle] = self._capped(m.Dongle, m.Dongle.account_upstream_id,
                                                                 t.Dongle.from_row, m.Dongle.serial)
        self.dongles_by_site: Capped[t.Dongle] = self._capped(m.Dongle, m.Dongle.site_upstream_id, t.Dongle.from_row,
                                                              m.Dongle.serial)
        self.inverter_by_serial = self._one(m.Inverter, m.Inverter.serial, t.Inverter.from_row)
        # A dongle moved from a removed inverter to a new one names both: the present one answers (as compiled).
        self.inverter_by_dongle = self._one(m.Inverter, m.Inverter.dongle_serial, t.Inverter.from_row,
                                            *present_first(m.Inverter.__table__))
        self.inverters_by_account: Capped[t.Inverter] = self._capped(m.Inverter, m.Inverter.account_upstream_id,
                                                                     t.Inverter.from_row, m.Inverter.serial)
        self.inverters_by_site: Capped[t.Inverter] = self._capped(m.Inverter, m.Inverter.site_upstream_id,
                                                                  t.Inverter.from_row, m.Inverter.serial)
        self.batteries_by_inverter = self._many(m.BatteryModule, m.BatteryModule.inverter_serial,
                                                t.BatteryModule.from_row, m.BatteryModule.position)
        self.meters_by_inverter = self._many(m.Meter, m.Meter.inverter_serial, t.Meter.from_row, m.Meter.address)
        # Keyed by (serial, limit): each distinct limit is one windowed statement that reads no more rows than asked.
        self.changes_by_inverter: DataLoader[tuple[str, int], list[t.InverterChange]] = IsolatedLoader(
            load_fn=self._load_changes)
        self.campaigns_by_inverter: DataLoader[str, list[CampaignHistoryEntry]] = IsolatedLoader(
            load_fn=self._load_campaigns)
        # One statement per distinct filter asked for in the request, whatever the number of inverters.
        self.alerts_by_inverter: DataLoader[AlertKey, list[Alert]] = IsolatedLoader(load_fn=self._load_alerts)
        self.incident_by_site: DataLoader[int, Incident | None] = IsolatedLoader(load_fn=self._load_incidents)

    async def _load_alerts(self, keys: list[AlertKey]) -> list[list[Alert]]:
        serials_by_filter: dict[tuple[tuple[AlertState, ...], tuple[Severity, ...], int], list[str]] = \
            defaultdict(list)
        for serial, states, severities, size in keys:
            serials_by_filter[(states, severities, size)].append(serial)
        grouped: dict[AlertKey, list[Alert]] = defaultdict(list)
        async with self._reads.session() as session:
            for (states, severities, size), serials in serials_by_filter.items():
                if size <= 0:
                    continue
                rows = await alerts_of_inverters(session, self.scope, serials, states=states,
                                                 severities=severities, per_inverter=size)
                for row in rows:
                    grouped[(row.inverter_serial, states, severities, size)].append(Alert.from_row(row))
        return [grouped.get(key, []) for key in keys]

    async def _load_incidents(self, sites: list[int]) -> list[Incident | None]:
        async with self._reads.session() as session:
            rows = await open_incidents_of_sites(session, self.scope, sites)
        found = {row.site_upstream_id: Incident.from_row(row) for row in rows}
        return [found.get(site) for site in sites]

    async def _load_campaigns(self, serials: list[str]) -> list[list[CampaignHistoryEntry]]:
        async with self._reads.session() as session:
            rows = await campaign_history(session, self.scope, serials)
        grouped: dict[str, list[CampaignHistoryEntry]] = defaultdict(list)
        for campaign, target in rows:
            grouped[target.serial].append(CampaignHistoryEntry.of(campaign, target))
        return [grouped.get(serial, []) for serial in serials]

    async def _load_changes(self, keys: list[tuple[str, int]]) -> list[list[t.InverterChange]]:
        serials_by_limit: dict[int, list[str]] = defaultdict(list)
        for serial, limit in keys:
            serials_by_limit[min(limit, MAX_HISTORY)].append(serial)
        grouped: dict[tuple[str, int], list[t.InverterChange]] = defaultdict(list)
        for limit, serials in serials_by_limit.items():
            if limit <= 0:
                continue
            rows = await self._read(_latest_changes(serials, limit))
            for row in rows:
                grouped[(row.inverter_serial, limit)].append(t.InverterChange.from_row(row))
        return [grouped.get((serial, min(limit, MAX_HISTORY)), []) for serial, limit in keys]

    def _capped(self, model: type[R], column: InstrumentedAttribute[Any], convert: Callable[[R], T],
                *order_by: Any) -> DataLoader[tuple[Any, int], list[T]]:
        """A to-many loader keyed by (key, at most how many rows): one windowed statement per distinct size, so
        a relation list never reads or returns more rows than its ``first:`` (which the cost limit counted);
        ties in ``order_by`` go by id, as on the compiled path."""
        ordering: Sequence[Any] = (*order_by, column.class_.id)

        async def load(keys: list[tuple[Any, int]]) -> list[list[T]]:
            keys_by_size: dict[int, list[Any]] = defaultdict(list)
            for key, size in keys:
                keys_by_size[size].append(key)
            grouped: dict[tuple[Any, int], list[T]] = defaultdict(list)
            for size, wanted in keys_by_size.items():
                rows = await self._read(_first_rows(model, column, wanted, ordering, size))
                for row in rows:
                    grouped[(getattr(row, column.key), size)].append(convert(row))
            return [grouped.get(key, []) for key in keys]

        return IsolatedLoader(load_fn=load)

    async def _read(self, action: Callable[[FleetReader], Awaitable[list[R]]]) -> list[R]:
        async with self._reads.session() as session:
            return await action(FleetReader(session, self.scope, now=self.now))

    def _one(self, model: type[R], column: InstrumentedAttribute[Any], convert: Callable[[R], T],
             *order_by: Any) -> DataLoader[Any, T | None]:
        """A to-one loader: of several rows sharing a key, the first in ``order_by``."""
        ordering: Sequence[Any] = order_by

        async def load(keys: list[Any]) -> list[T | None]:
            rows = await self._read(lambda reader: reader.load_many(model, column, keys, order_by=ordering))
            found: dict[Any, T] = {}
            for row in rows:
                found.setdefault(getattr(row, column.key), convert(row))
            return [found.get(key) for key in keys]

        return IsolatedLoader(load_fn=load)

    def _many(self, model: type[R], column: InstrumentedAttribute[Any], convert: Callable[[R], T],
              *order_by: Any) -> DataLoader[Any, list[T]]:
        """A to-many loader of every present row per key, in ``order_by`` then id (as on the compiled path)."""
        ordering: Sequence[Any] = (*order_by, column.class_.id)

        async def load(keys: list[Any]) -> list[list[T]]:
            rows = await self._read(lambda reader: reader.load_many(
                model, column, keys, order_by=ordering, present_only=True))
            grouped: dict[Any, list[T]] = defaultdict(list)
            for row in rows:
                grouped[getattr(row, column.key)].append(convert(row))
            return [grouped.get(key, []) for key in keys]

        return IsolatedLoader(load_fn=load)


def _latest_changes(serials: list[str], limit: int) -> Callable[[FleetReader], Awaitable[list[m.InverterChange]]]:
    """The read of the newest ``limit`` history rows of each of ``serials``."""
    return lambda reader: reader.latest_changes(serials, limit)


def _first_rows(model: type[R], column: InstrumentedAttribute[Any], keys: list[Any], ordering: Sequence[Any],
                size: int) -> Callable[[FleetReader], Awaitable[list[R]]]:
    """The read of at most ``size`` present rows per key (the first in ``ordering``)."""
    return lambda reader: reader.load_many(model, column, keys, order_by=ordering, present_only=True, per_key=size)
