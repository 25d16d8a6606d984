"""The per-(model, ARM firmware) setting catalogue, learnt by reading ``GET /inverter/{serial}/settings`` once for
one inverter of each group and kept.

Learning calls upstream, so it runs outside any transaction: read what is known (one short session), ask
upstream for the missing groups (no session open), store them (another short session).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.campaigns.upstream import CAMPAIGN_LANE
from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.campaign import CatalogueSetting, SettingCatalogue
from service.givenergy import GivEnergyError, SettingDefinition
from service.upstream import Upstream

log = structlog.get_logger(__name__)

Group = tuple[str, str]
"""(model, ARM firmware); unknown values are empty strings."""


def group_of(model: str | None, firmware_arm: str | None) -> Group:
    """The catalogue group of an inverter."""
    return (model or "", firmware_arm or "")


@dataclass(frozen=True)
class KnownSetting:
    """A setting as the catalogue knows it for one group."""

    name: str | None
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Learning:
    """What learning cost and what it could not learn."""

    requests: int
    failed: list[Group]


async def known_groups(session: AsyncSession, tenant_id: TenantId) -> set[Group]:
    """Groups whose catalogue is stored."""
    rows = await session.execute(select(SettingCatalogue.model, SettingCatalogue.firmware_arm)
                                 .where(SettingCatalogue.tenant_id == tenant_id))
    return {(model, firmware) for model, firmware in rows.all()}


async def setting_in_groups(session: AsyncSession, tenant_id: TenantId, setting_id: int
                            ) -> dict[Group, KnownSetting | None]:
    """For every stored group: the setting as it offers it, or ``None`` when it does not offer it."""
    rows = await session.execute(
        select(SettingCatalogue.model, SettingCatalogue.firmware_arm, CatalogueSetting.name, CatalogueSetting.rules)
        .outerjoin(CatalogueSetting, (CatalogueSetting.catalogue_id == SettingCatalogue.id)
                   & (CatalogueSetting.setting_id == setting_id))
        .where(SettingCatalogue.tenant_id == tenant_id))
    return {(model, firmware): (KnownSetting(name, tuple(rules)) if rules is not None else None)
            for model, firmware, name, rules in rows.all()}


async def learn(session_factory: async_sessionmaker[AsyncSession], upstream: Upstream, tenant_id: TenantId,
                samples: Mapping[Group, Iterable[str]]) -> Learning:
    """Read and keep the catalogue of every group in ``samples`` not stored yet.

    Args:
        session_factory: For the two short sessions (never held across the upstream calls).
        upstream: The one upstream entry point.
        tenant_id: The tenant.
        samples: For each group, serials to try in order (the first that answers teaches the group).
    """
    async with session_factory() as session:
        missing = {group: list(serials) for group, serials in samples.items()
                   if group not in await known_groups(session, tenant_id)}
    if not missing:
        return Learning(0, [])
    learnt: dict[Group, tuple[str, list[SettingDefinition]]] = {}
    failed: list[Group] = []
    requests = 0
    async with upstream.client(tenant_id, CAMPAIGN_LANE) as client:
        for group, serials in sorted(missing.items()):
            for serial in serials[:3]:
                requests += 1
                try:
                    learnt[group] = (serial, await client.get_settings(serial))
                    break
                except GivEnergyError as exc:
                    log.info("campaigns.catalogue_unavailable", model=group[0], firmware=group[1],
                             error=type(exc).__name__)
            else:
                failed.append(group)
    if learnt:
        async with session_factory() as session, session.begin():
            await _store(session, tenant_id, learnt)
    return Learning(requests, failed)


async def _store(session: AsyncSession, tenant_id: TenantId,
                 learnt: dict[Group, tuple[str, list[SettingDefinition]]]) -> None:
    now = utcnow()
    for (model, firmware), (serial, settings) in learnt.items():
        catalogue_id = (await session.execute(
            insert(SettingCatalogue)
            .values(tenant_id=tenant_id, model=model, firmware_arm=firmware, source_serial=serial, learned_at=now)
            .on_conflict_do_nothing(index_elements=["tenant_id", "model", "firmware_arm"])
            .returning(SettingCatalogue.id))).scalar_one_or_none()
        if catalogue_id is None:
            continue  # learnt concurrently by another plan
        rows = [{"catalogue_id": catalogue_id, "setting_id": item.id, "name": item.name,
                 "validation": (item.validation or "")[:300] or None, "rules": list(item.validation_rules)}
                for item in {entry.id: entry for entry in settings if entry.id is not None}.values()]
        if rows:
            await session.execute(insert(CatalogueSetting).values(rows))
