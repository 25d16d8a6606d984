"""Per-request dataloaders: one batched statement per relation per request, each batch on its own session
(sibling resolvers run concurrently, and one ``AsyncSession`` must not be used by two tasks at once).

To-one loaders return a row whatever its ``removed_at`` (an inverter still names the site it was at);
to-many loaders return the rows still present upstream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from strawberry.dataloader import DataLoader

from service.db.models import mirror as m
from service.mirror.queries import FleetReader, ReadScope

K = TypeVar("K")
MAX_HISTORY = 200
"""History rows loaded per inverter (the most ``Inverter.history(limit:)`` may ask for)."""
M = TypeVar("M")


class Loaders:
    """The dataloaders of one request, all bound to the caller's scope."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], scope: ReadScope, now: datetime) -> None:
        self._session_factory = session_factory
        self.scope = scope
        self.now = now
        self.account_by_upstream_id = self._one(m.FleetAccount, m.FleetAccount.upstream_id)
        self.accounts_by_parent = self._many(m.FleetAccount, m.FleetAccount.parent_upstream_id,
                                             m.FleetAccount.username)
        self.site_by_upstream_id = self._one(m.Site, m.Site.upstream_id)
        self.sites_by_account = self._many(m.Site, m.Site.account_upstream_id, m.Site.upstream_id)
        self.dongle_by_serial = self._one(m.Dongle, m.Dongle.serial)
        self.dongles_by_account = self._many(m.Dongle, m.Dongle.account_upstream_id, m.Dongle.serial)
        self.dongles_by_site = self._many(m.Dongle, m.Dongle.site_upstream_id, m.Dongle.serial)
        self.inverter_by_serial = self._one(m.Inverter, m.Inverter.serial)
        self.inverter_by_dongle = self._one(m.Inverter, m.Inverter.dongle_serial)
        self.inverters_by_account = self._many(m.Inverter, m.Inverter.account_upstream_id, m.Inverter.serial)
        self.inverters_by_site = self._many(m.Inverter, m.Inverter.site_upstream_id, m.Inverter.serial)
        self.batteries_by_inverter = self._many(m.BatteryModule, m.BatteryModule.inverter_serial,
                                                m.BatteryModule.position)
        self.meters_by_inverter = self._many(m.Meter, m.Meter.inverter_serial, m.Meter.address)
        self.changes_by_inverter = DataLoader(load_fn=self._load_changes)

    async def _load_changes(self, serials: list[str]) -> list[list[m.InverterChange]]:
        rows = await self._read(lambda reader: reader.latest_changes(serials, MAX_HISTORY))
        grouped: dict[str, list[m.InverterChange]] = defaultdict(list)
        for row in rows:
            grouped[row.inverter_serial].append(row)
        return [grouped.get(serial, []) for serial in serials]

    async def _read(self, action: Callable[[FleetReader], Awaitable[list[M]]]) -> list[M]:
        async with self._session_factory() as session:
            return await action(FleetReader(session, self.scope, now=self.now))

    def _one(self, model: type[M], column: InstrumentedAttribute[Any]) -> DataLoader[Any, M | None]:
        async def load(keys: list[Any]) -> list[M | None]:
            rows = await self._read(lambda reader: reader.load_many(model, column, keys))
            found = {getattr(row, column.key): row for row in rows}
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=load)

    def _many(self, model: type[M], column: InstrumentedAttribute[Any], *order_by: Any,
              present_only: bool = True) -> DataLoader[Any, list[M]]:
        ordering: Sequence[Any] = order_by

        async def load(keys: list[Any]) -> list[list[M]]:
            rows = await self._read(lambda reader: reader.load_many(
                model, column, keys, order_by=ordering, present_only=present_only))
            grouped: dict[Any, list[M]] = defaultdict(list)
            for row in rows:
                grouped[getattr(row, column.key)].append(row)
            return [grouped.get(key, []) for key in keys]

        return DataLoader(load_fn=load)
