"""The plan (the dry run): the frozen target set with every exclusion's reason, waves, request cost and ETA.

:func:`match` reads the candidates from the mirror with the read side's own inverter filter and scope (a key
restricted to a subtree can only reach its subtree); :func:`make_plan` is pure.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.catalogue import Group, KnownSetting, group_of
from service.campaigns.schemas import Bucket, CampaignSpec, Exclusion, PlanView
from service.campaigns.values import canonical, check
from service.campaigns.waves import request_cost, wave_sizes
from service.db.lists import one_of
from service.db.models.campaign import CampaignTarget
from service.db.models.mirror import Inverter
from service.mirror import queries as q

LOCKED = -7
EXCLUSIONS_SHOWN = 1000
"""Exclusions listed one by one in a plan at most (the counts by reason cover them all)."""


@dataclass(frozen=True)
class Candidate:
    """An inverter the targets matched, as the mirror knows it."""

    serial: str
    model: str | None
    firmware_arm: str | None
    status: str | None
    controllable: bool | None
    """The cloud's ``is-controllable`` flag (``None``: it sent no flags)."""

    @property
    def group(self) -> Group:
        """Its setting-catalogue group."""
        return group_of(self.model, self.firmware_arm)


@dataclass(frozen=True)
class PlannedTarget:
    """A candidate with its exclusion reason (``None``: acted on) and wave (1-based; ``None`` when excluded)."""

    candidate: Candidate
    reason: str | None
    wave: int | None = None


@dataclass
class Plan:
    """The frozen target set and what the preview shows."""

    targets: list[PlannedTarget]
    value: str | None
    view: PlanView
    warnings: list[str] = field(default_factory=list)


def inverter_filter(spec: CampaignSpec) -> q.InverterFilter:
    """The campaign's targets in the read side's filter vocabulary."""
    t = spec.targets
    return q.InverterFilter(
        status_in=t.statuses, model_in=t.models, firmware_arm_min=t.firmware_arm_min,
        firmware_arm_max=t.firmware_arm_max, firmware_dsp_min=t.firmware_dsp_min, firmware_dsp_max=t.firmware_dsp_max,
        account_id=t.account_id, site_id_in=t.site_ids, serial_in=t.serials, removed=False)


async def match(session: AsyncSession, scope: q.ReadScope, spec: CampaignSpec, now: datetime) -> list[Candidate]:
    """The inverters the targets match, in the caller's scope, by serial."""
    statement = (select(Inverter.serial, Inverter.model, Inverter.firmware_arm, Inverter.status,
                        Inverter.is_controllable)
                 .where(*inverter_filter(spec).conditions(scope, now)).order_by(Inverter.serial))
    return [Candidate(*row) for row in (await session.execute(statement)).all()]


async def locked_last_time(session: AsyncSession, tenant_id: object, serials: Sequence[str]) -> set[str]:
    """Inverters whose latest campaign attempt answered -7 (locked by another actor)."""
    if not serials:
        return set()
    latest = (select(CampaignTarget.serial, CampaignTarget.code)
              .where(CampaignTarget.tenant_id == tenant_id, one_of(CampaignTarget.serial, serials),
                     CampaignTarget.attempts > 0)
              .order_by(CampaignTarget.serial, CampaignTarget.updated_at.desc().nulls_last())
              .ext(distinct_on(CampaignTarget.serial)))
    return {serial for serial, code in (await session.execute(latest)).all() if code == LOCKED}


def _spread(serial: str) -> bytes:
    """A stable, model-independent order, so every wave (the canary first) samples the whole fleet."""
    return hashlib.blake2b(serial.encode(), digest_size=8).digest()


def _exclusion(candidate: Candidate, spec: CampaignSpec, catalogue: dict[Group, KnownSetting | None],
               locked: set[str], excluded: set[str]) -> str | None:
    status = (candidate.status or "").upper()
    if candidate.serial in excluded:
        return "excluded_by_filter"
    if status == "LOST":
        return "offline"
    if status == "UPDATING":
        return "updating"
    if spec.kind != "read" and candidate.controllable is False:
        return "not_controllable"
    if candidate.group in catalogue:
        known = catalogue[candidate.group]
        if known is None:
            return "setting_not_offered"
        if spec.kind != "read":
            problem = check(spec.value, known.rules).problem
            if problem is not None:
                return f"invalid_value: {problem}"
    if spec.kind != "read" and candidate.serial in locked:
        return "locked_last_attempt"
    return None


def _buckets(values: Sequence[str | None]) -> list[Bucket]:
    return [Bucket(value=value, count=count)
            for value, count in sorted(Counter(values).items(), key=lambda item: (-item[1], item[0] or ""))]


def make_plan(candidates: Sequence[Candidate], spec: CampaignSpec, *, catalogue: dict[Group, KnownSetting | None],
              locked: set[str], approval_threshold: int, requests_per_minute: int, catalogue_requests: int = 0,
              unknown_groups: Sequence[Group] = ()) -> Plan:
    """The plan of a campaign over ``candidates`` (pure).

    Args:
        candidates: The matched inverters.
        spec: The campaign.
        catalogue: The setting as each known (model, firmware) group offers it (``None``: not offered).
        locked: Inverters locked on their last attempt.
        approval_threshold: Above this many targets an admin must approve.
        requests_per_minute: The campaign lane's capacity, for the ETA.
        catalogue_requests: Catalogue reads made while planning.
        unknown_groups: Groups whose catalogue could not be learnt (not validated: the device decides).
    """
    excluded = set(spec.targets.exclude_serials)
    reasons = [(candidate, _exclusion(candidate, spec, catalogue, locked, excluded)) for candidate in candidates]
    acting = sorted((c for c, reason in reasons if reason is None), key=lambda c: _spread(c.serial))
    sizes = wave_sizes(len(acting), canary=spec.waves.canary_size, growth=spec.waves.growth_factor,
                       largest=spec.waves.max_wave_size)
    wave_of: dict[str, int] = {}
    position = 0
    for number, size in enumerate(sizes, start=1):
        for candidate in acting[position:position + size]:
            wave_of[candidate.serial] = number
        position += size
    targets = [PlannedTarget(c, reason, wave_of.get(c.serial)) for c, reason in reasons]
    writes = spec.kind != "read"
    readable = spec.kind != "restart"
    cost = request_cost(sizes, reads_before=readable, writes=writes, reads_after=writes and readable and spec.verify)
    eta = cost / max(1, requests_per_minute) * 60 + spec.waves.pause_seconds * max(0, len(sizes) - 1)
    warnings: list[str] = []
    if unknown_groups:
        names = ", ".join(f"{model or '?'} (ARM {firmware or '?'})" for model, firmware in unknown_groups[:5])
        warnings.append(f"the setting catalogue of {len(unknown_groups)} model/firmware group(s) could not be read "
                        f"({names}): their values are checked by the devices only")
    if spec.kind == "restart":
        warnings.append("restart cannot be read back: a potentially-applied answer (-1, -5, -6) is reported failed, "
                        "never sent again")
    if not spec.verify and writes:
        warnings.append("read-back verification is off: 'applied' means the device answered, not that it stored it")
    if not spec.targets.has_criteria:
        warnings.append(f"no target criteria given: the whole fleet ({len(candidates)} inverters) is targeted")
    if spec.window is not None:
        warnings.append("waves start only inside the window (tenant timezone)")
    if not acting:
        warnings.append("no inverter would be acted on")
    if spec.targets.serials is not None:
        found = {c.serial for c in candidates}
        unknown = [serial for serial in spec.targets.serials if serial not in found]
        if unknown:
            warnings.append(f"{len(unknown)} listed serial(s) are not in your fleet: {', '.join(unknown[:5])}")
    exclusions = [Exclusion(serial=c.serial, reason=reason) for c, reason in reasons if reason is not None]
    view = PlanView(
        matched=len(candidates), targets=len(acting),
        by_model=_buckets([c.model for c in acting]), by_firmware=_buckets([c.firmware_arm for c in acting]),
        by_status=_buckets([c.status for c in acting]), exclusions=exclusions[:EXCLUSIONS_SHOWN],
        exclusions_by_reason=_buckets([e.reason.partition(":")[0] for e in exclusions]),
        waves=sizes, requests=cost, catalogue_requests=catalogue_requests, requests_per_minute=requests_per_minute,
        eta_seconds=round(eta, 1), needs_approval=len(acting) > approval_threshold, warnings=warnings)
    value = canonical(spec.value) if spec.value is not None else None
    if value is not None and spec.kind != "read":
        rules = next((known.rules for known in catalogue.values() if known is not None), ())
        value = check(spec.value, rules).value or value
    return Plan(targets, value, view, warnings)
