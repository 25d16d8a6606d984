"""The campaign engine: one chunk per tick, exactly once on the wire.

A tick claims one step in a short transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` on the campaign), records a
write chunk as ``sending`` and commits; then sends it with no transaction open; then records every inverter's
answer in a second short transaction and says when to tick again. A ``sending`` chunk whose lease ran out (its
tick died) is never sent again: its inverters are read, and only those whose value did not change are written
again (counted in ``Campaign.rewrites``).

Per wave: a multi-control **read** (rollback values, already-set detection), a multi-control **write** of the
rest (<= 1,000 serials per request) and a multi-control **read-back**. Between waves: abort thresholds, the
pause, retries of offline inverters until the deadline, and the window in the tenant's timezone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.campaigns import outcomes
from service.campaigns.lifecycle import ENGINE_STATES
from service.campaigns.outcomes import Answer, Step
from service.campaigns.steps import add_chunks, announce_progress, stop_writing, system_principal, transition
from service.campaigns.upstream import CAMPAIGN_LANE
from service.campaigns.values import ValueKind, kind_of_value, wire
from service.campaigns.window import in_window, next_opening
from service.core.changes import Publish
from service.core.clock import utcnow
from service.core.errors import GivfleetError
from service.core.tenancy import TenantId, tenant_id_from
from service.db.lists import one_of
from service.db.models.campaign import (
    Campaign,
    CampaignChunk,
    CampaignKind,
    CampaignState,
    CampaignTarget,
    ChunkKind,
    ChunkState,
    TargetState,
)
from service.db.models.tenant import Tenant
from service.db.uow import committed
from service.givenergy import ControlResult, GivEnergyClient, GivEnergyError, Lane, RateLimitedError

log = structlog.get_logger(__name__)

READ_KINDS = frozenset({ChunkKind.READ, ChunkKind.VERIFY, ChunkKind.ROLLBACK_READ, ChunkKind.ROLLBACK_VERIFY})
WRITE_KINDS = frozenset({ChunkKind.WRITE, ChunkKind.ROLLBACK_WRITE})
FAILURES = (TargetState.FAILED, TargetState.NOT_APPLIED)
RATE_LIMITED_DELAY = 30.0
READ_RETRY_DELAY = 5.0


class ClientSource(Protocol):
    """Where the engine gets the tenant's upstream client: :class:`service.upstream.Upstream`."""

    def client(self, tenant_id: TenantId, lane: Lane) -> AbstractAsyncContextManager[GivEnergyClient]:
        """An open client for the tenant in ``lane``."""


@dataclass(frozen=True)
class TickOutcome:
    """What a tick did, and when the next one should run (``None``: the chain stops here)."""

    did: str
    next_at: datetime | None = None
    seq: int | None = None


@dataclass(frozen=True)
class _Claim:
    campaign_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    setting_id: int
    chunk_id: uuid.UUID
    kind: ChunkKind
    serials: list[str]
    value: str | None
    seq: int


class CampaignEngine:
    """Runs campaigns one tick at a time.

    Args:
        session_factory: Short sessions (never held across an upstream call).
        clients: The one upstream entry point (``resources.upstream``).
        clock: "Now" (the simulator's clock in tests; windows and deadlines are judged by it).
        lease_seconds: How long a ``sending`` chunk belongs to the tick that sent it (longer than a control call).
        publish: Where the progress of each committed tick goes (live subscribers).
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], clients: ClientSource, *,
                 publish: Publish, clock: Callable[[], datetime] = utcnow, lease_seconds: float = 300.0) -> None:
        self._sessions = session_factory
        self._clients = clients
        self._publish = publish
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One short transaction; the progress it recorded is published once it has committed."""
        return committed(self._sessions, publish=self._publish)

    async def tick(self, campaign_id: uuid.UUID, seq: int | None = None) -> TickOutcome:
        """Claim one step, act, record. ``seq``: the tick chain's number (``None``: act whatever the chain)."""
        claimed = await self._claim(campaign_id, seq)
        if isinstance(claimed, TickOutcome):
            return claimed
        results, error = await self._send(claimed)
        return await self._record(claimed, results, error)

    async def run(self, campaign_id: uuid.UUID, *, max_ticks: int = 10_000) -> list[TickOutcome]:
        """Tick until the chain stops or must wait for a later time (tests, tools, the bench)."""
        done: list[TickOutcome] = []
        for _ in range(max_ticks):
            outcome = await self.tick(campaign_id)
            done.append(outcome)
            if outcome.next_at is None or outcome.next_at > self._clock():
                break
        return done

    # --- claim ----------------------------------------------------------------------------------------

    async def _claim(self, campaign_id: uuid.UUID, seq: int | None) -> _Claim | TickOutcome:
        async with self._transaction() as session:
            campaign = (await session.execute(
                select(Campaign).where(Campaign.id == campaign_id).with_for_update(skip_locked=True)
            )).scalar_one_or_none()
            if campaign is None:
                return TickOutcome("busy: another tick holds the campaign (it continues the chain)")
            if seq is not None and campaign.tick_seq != seq:
                return TickOutcome("superseded by a newer tick chain")
            now = self._clock()
            campaign.heartbeat_at = now
            if campaign.state not in ENGINE_STATES:
                return TickOutcome(f"campaign is {campaign.state.value}")
            in_flight = await self._resolve_lost(session, campaign, now)
            if in_flight is not None:
                return self._again(campaign, "a chunk is in flight", in_flight)
            chunk = await self._next_chunk(session, campaign)
            if chunk is None:
                waiting = await self._advance(session, campaign, now)
                if waiting is not None:
                    return waiting
                chunk = await self._next_chunk(session, campaign)
                if chunk is None:
                    return self._again(campaign, "nothing to send yet", now)
            return await self._mark_sending(session, campaign, chunk, now)

    def _again(self, campaign: Campaign, did: str, at: datetime | None) -> TickOutcome:
        if at is None:
            return TickOutcome(did)
        campaign.tick_seq += 1
        return TickOutcome(did, at, campaign.tick_seq)

    async def _next_chunk(self, session: AsyncSession, campaign: Campaign) -> CampaignChunk | None:
        return (await session.execute(
            select(CampaignChunk).where(CampaignChunk.campaign_id == campaign.id,
                                        CampaignChunk.state == ChunkState.PENDING)
            .order_by(CampaignChunk.sequence).limit(1))).scalar_one_or_none()

    async def _resolve_lost(self, session: AsyncSession, campaign: Campaign, now: datetime) -> datetime | None:
        """Turn ``sending`` chunks whose tick died into reads; return a live lease's end if one is in flight."""
        sending = (await session.execute(
            select(CampaignChunk).where(CampaignChunk.campaign_id == campaign.id,
                                        CampaignChunk.state == ChunkState.SENDING))).scalars().all()
        for chunk in sending:
            if chunk.lease_until is not None and chunk.lease_until > now:
                return chunk.lease_until
            await self._answer_lost(session, campaign, chunk, "the tick sending it stopped before recording")
        return None

    async def _answer_lost(self, session: AsyncSession, campaign: Campaign, chunk: CampaignChunk, why: str) -> None:
        """A chunk's answer is lost: reads are simply repeated; writes are resolved by reading first."""
        chunk.lease_until = None
        chunk.error = why[:300]
        if chunk.kind in READ_KINDS:
            chunk.state = ChunkState.PENDING
            return
        chunk.state, chunk.done_at = ChunkState.DONE, self._clock()
        writing = TargetState.WRITING if chunk.kind is ChunkKind.WRITE else TargetState.ROLLBACK_WRITING
        if campaign.kind is CampaignKind.RESTART:
            await self._set(session, campaign, chunk.serials, [writing], TargetState.FAILED,
                            "outcome_unknown: a restart cannot be read back")
            return
        serials = await self._serials_in(session, campaign, chunk.serials, [writing])
        verify = ChunkKind.VERIFY if chunk.kind is ChunkKind.WRITE else ChunkKind.ROLLBACK_VERIFY
        await add_chunks(session, campaign, verify, serials, wave=chunk.wave)
        log.warning("campaigns.answer_lost", campaign_id=str(campaign.id), chunk_id=str(chunk.id), serials=len(serials))

    async def _mark_sending(self, session: AsyncSession, campaign: Campaign, chunk: CampaignChunk,
                            now: datetime) -> _Claim:
        chunk.state, chunk.lease_until, chunk.sent_at = ChunkState.SENDING, now + self._lease, now
        serials = list(chunk.serials)
        if chunk.kind in WRITE_KINDS:
            ready, writing = ((TargetState.READY, TargetState.WRITING) if chunk.kind is ChunkKind.WRITE
                              else (TargetState.ROLLBACK_READY, TargetState.ROLLBACK_WRITING))
            serials = await self._serials_in(session, campaign, chunk.serials, [ready])
            await session.execute(
                update(CampaignTarget)
                .where(CampaignTarget.campaign_id == campaign.id, one_of(CampaignTarget.serial, serials))
                .values(state=writing, writes=CampaignTarget.writes + 1, updated_at=now))
        campaign.requests_used += 1
        campaign.tick_seq += 1
        return _Claim(campaign.id, campaign.tenant_id, campaign.name, campaign.setting_id, chunk.id, chunk.kind,
                      serials, chunk.value if chunk.kind is ChunkKind.ROLLBACK_WRITE else campaign.value,
                      campaign.tick_seq)

    # --- send -----------------------------------------------------------------------------------------

    async def _send(self, claim: _Claim) -> tuple[dict[str, ControlResult], Exception | None]:
        if not claim.serials:
            return {}, None
        context = f"givfleet campaign {claim.name}"[:100]
        try:
            async with self._clients.client(tenant_id_from(claim.tenant_id), CAMPAIGN_LANE) as client:
                if claim.kind in READ_KINDS:
                    return await client.multi_read_setting(claim.serials, claim.setting_id, context=context), None
                value = wire(claim.value or "", kind_of_value(claim.value or ""))
                return await client.multi_write_setting(claim.serials, claim.setting_id, value, context=context), None
        except (GivEnergyError, GivfleetError) as exc:
            log.warning("campaigns.request_failed", campaign_id=str(claim.campaign_id), kind=claim.kind.value,
                        error=type(exc).__name__)
            return {}, exc

    # --- record ---------------------------------------------------------------------------------------

    async def _record(self, claim: _Claim, results: dict[str, ControlResult], error: Exception | None) -> TickOutcome:
        async with self._transaction() as session:
            campaign = (await session.execute(
                select(Campaign).where(Campaign.id == claim.campaign_id).with_for_update())).scalar_one()
            chunk = (await session.execute(
                select(CampaignChunk).where(CampaignChunk.id == claim.chunk_id).with_for_update())).scalar_one()
            now = self._clock()
            if chunk.state is not ChunkState.SENDING:
                return self._again(campaign, "the chunk was resolved by another tick", now)
            if error is not None:
                return await self._failed_request(session, campaign, chunk, error, now)
            chunk.state, chunk.done_at, chunk.lease_until = ChunkState.DONE, now, None
            announce_progress(session, campaign)
            answers = {serial: Answer.of(result) for serial, result in results.items()}
            await self._apply(session, campaign, chunk, answers)
            await self._check_total_failures(session, campaign)
            return self._again(campaign, f"{chunk.kind.value} of {len(claim.serials)} inverters", now)

    async def _failed_request(self, session: AsyncSession, campaign: Campaign, chunk: CampaignChunk,
                              error: Exception, now: datetime) -> TickOutcome:
        nothing_sent = isinstance(error, RateLimitedError | GivfleetError)
        if nothing_sent and chunk.kind in WRITE_KINDS:
            # A 429 (or no budget / no credential) means the request was refused before reaching any device.
            writing, ready = ((TargetState.WRITING, TargetState.READY) if chunk.kind is ChunkKind.WRITE
                              else (TargetState.ROLLBACK_WRITING, TargetState.ROLLBACK_READY))
            await session.execute(
                update(CampaignTarget)
                .where(CampaignTarget.campaign_id == campaign.id, one_of(CampaignTarget.serial, chunk.serials),
                       CampaignTarget.state == writing)
                .values(state=ready, writes=CampaignTarget.writes - 1))
            chunk.state, chunk.lease_until, chunk.error = ChunkState.PENDING, None, str(error)[:300]
        else:
            await self._answer_lost(session, campaign, chunk, f"request failed: {error}")
        delay = RATE_LIMITED_DELAY if isinstance(error, RateLimitedError) else READ_RETRY_DELAY
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(1.0, error.retry_after)
        return self._again(campaign, f"{chunk.kind.value} failed ({type(error).__name__}); retrying",
                           now + timedelta(seconds=delay))

    async def _apply(self, session: AsyncSession, campaign: Campaign, chunk: CampaignChunk,
                     answers: dict[str, Answer]) -> None:
        kind = kind_of_value(campaign.value) if campaign.value is not None else ValueKind.NUMBER
        expected = _EXPECTED[chunk.kind]
        targets = (await session.execute(
            select(CampaignTarget).where(CampaignTarget.campaign_id == campaign.id,
                                         one_of(CampaignTarget.serial, chunk.serials),
                                         CampaignTarget.state.in_(expected)))).scalars().all()
        now = self._clock()
        follow: dict[TargetState, list[CampaignTarget]] = {}
        for target in targets:
            answer = answers.get(target.serial, Answer(code=None, ok=False))
            step = self._classify(campaign, chunk, target, answer, kind)
            if step is None:  # a read-back that failed: read again in a later wave
                target.code, target.reason = answer.code, f"read_back_failed: {answer.reason}"
                continue
            _take(target, step, chunk.kind)
            target.updated_at = now
            follow.setdefault(target.state, []).append(target)
        await self._follow_up(session, campaign, chunk, follow)

    def _classify(self, campaign: Campaign, chunk: CampaignChunk, target: CampaignTarget, answer: Answer,
                  kind: ValueKind) -> Step | None:
        value = campaign.value or ""
        left = target.value_read or target.written_value
        match chunk.kind:
            case ChunkKind.READ if campaign.kind is CampaignKind.READ:
                return outcomes.after_snapshot(answer)
            case ChunkKind.READ:
                return outcomes.after_read(answer, value, kind, skip_if_set=campaign.skip_if_set)
            case ChunkKind.WRITE:
                return outcomes.after_write(answer, value, kind, verify=campaign.verify,
                                            readable=campaign.kind is not CampaignKind.RESTART)
            case ChunkKind.VERIFY:
                return outcomes.after_verify(answer, was=target.state, target=value, previous=target.previous_value,
                                             written=target.written_value, kind=kind)
            case ChunkKind.ROLLBACK_READ:
                return outcomes.rollback_check(answer, left=left, kind=kind)
            case ChunkKind.ROLLBACK_WRITE:
                return outcomes.after_rollback_write(answer)
            case _:
                step = outcomes.after_rollback_verify(answer, was=target.state, previous=target.previous_value or "",
                                                      left=left, kind=kind)
                return step or Step(TargetState.ROLLBACK_FAILED, f"read_back_failed: {answer.reason}",
                                    code=answer.code)

    async def _follow_up(self, session: AsyncSession, campaign: Campaign, chunk: CampaignChunk,
                         follow: dict[TargetState, list[CampaignTarget]]) -> None:
        writing_allowed = campaign.state in (CampaignState.RUNNING, CampaignState.PAUSED)
        ready = [t.serial for t in follow.get(TargetState.READY, [])]
        if ready and writing_allowed:
            if chunk.kind is ChunkKind.VERIFY:
                campaign.rewrites += len(ready)
            await add_chunks(session, campaign, ChunkKind.WRITE, ready, wave=chunk.wave)
        elif ready:
            await self._set(session, campaign, ready, [TargetState.READY], TargetState.SKIPPED,
                            campaign.state.value)
        to_verify = [t.serial for state in (TargetState.WRITTEN, TargetState.UNVERIFIED)
                     for t in follow.get(state, [])]
        if to_verify:
            await add_chunks(session, campaign, ChunkKind.VERIFY, to_verify, wave=chunk.wave)
        rollback_ready = [(t.serial, t.previous_value or "") for t in follow.get(TargetState.ROLLBACK_READY, [])]
        for previous, serials in outcomes.rollback_groups(rollback_ready):
            await add_chunks(session, campaign, ChunkKind.ROLLBACK_WRITE, serials, wave=chunk.wave, value=previous)
        rollback_written = [t.serial for t in follow.get(TargetState.ROLLBACK_WRITTEN, [])]
        if rollback_written:
            await add_chunks(session, campaign, ChunkKind.ROLLBACK_VERIFY, rollback_written, wave=chunk.wave)

    async def _check_total_failures(self, session: AsyncSession, campaign: Campaign) -> None:
        if campaign.state is not CampaignState.RUNNING or campaign.abort_failure_count is None:
            return
        failed = await self._count(session, campaign, FAILURES)
        threshold = campaign.abort_failure_count
        if failed >= threshold:
            await self._abort(session, campaign, f"{failed} inverters failed (threshold {threshold})")

    async def _abort(self, session: AsyncSession, campaign: Campaign, reason: str) -> None:
        await stop_writing(session, campaign, "aborted")
        await transition(session, system_principal(tenant_id_from(campaign.tenant_id)), campaign, "abort",
                         reason=reason)
        campaign.finished_at = self._clock()
        log.warning("campaigns.aborted", campaign_id=str(campaign.id), reason=reason)

    # --- between waves --------------------------------------------------------------------------------

    async def _advance(self, session: AsyncSession, campaign: Campaign, now: datetime) -> TickOutcome | None:
        """No chunk is pending: finish, wait, or start the next wave (``None``: chunks were staged)."""
        system = system_principal(tenant_id_from(campaign.tenant_id))
        if campaign.state is CampaignState.ROLLING_BACK:
            await transition(session, system, campaign, "finish_rollback")
            campaign.finished_at = now
            return TickOutcome("rolled back")
        if campaign.state in (CampaignState.CANCELLED, CampaignState.ABORTED):
            await self._settle_unverified(session, campaign, campaign.state.value)
            return TickOutcome(f"{campaign.state.value}: every written inverter is settled")
        wave = campaign.current_wave
        # The failure share is judged on planned waves; a wave made only of retries fails by nature.
        if 0 < wave <= campaign.wave_count and await self._wave_failed(session, campaign, wave):
            return self._again(campaign, "aborted", now)
        expired = campaign.deadline is not None and now >= campaign.deadline
        await self._give_up(session, campaign, expired)
        planned = await self._serials_where(session, campaign, [TargetState.PENDING], wave=wave + 1)
        retries = await self._serials_where(session, campaign, [TargetState.RETRYING])
        reverify = await self._serials_where(session, campaign, [TargetState.WRITTEN, TargetState.UNVERIFIED])
        if not (planned or retries or reverify):
            await transition(session, system, campaign, "complete")
            campaign.finished_at = now
            return TickOutcome("completed")
        delay = campaign.wave_pause_seconds if planned else campaign.retry_after_seconds
        if wave > 0 and delay > 0 and campaign.next_step_at is None:
            campaign.next_step_at = now + timedelta(seconds=delay)
        tenant = await session.get(Tenant, campaign.tenant_id)
        zone = tenant.timezone if tenant is not None else "UTC"
        inside = in_window(now, zone, campaign.window_start, campaign.window_end, campaign.window_weekdays)
        if campaign.next_step_at is not None and campaign.next_step_at > now:
            why = "waiting before the next wave" if inside else "outside the window"
            return self._again(campaign, why, campaign.next_step_at)
        if not inside:
            campaign.next_step_at = next_opening(now, zone, campaign.window_start, campaign.window_end,
                                                 campaign.window_weekdays)
            return self._again(campaign, "outside the window", campaign.next_step_at)
        campaign.next_step_at = None
        await self._start_wave(session, campaign, wave + 1, planned + retries, reverify)
        return None

    async def _start_wave(self, session: AsyncSession, campaign: Campaign, wave: int, fresh: list[str],
                          reverify: list[str]) -> None:
        campaign.current_wave = wave
        everyone = fresh + reverify
        await session.execute(update(CampaignTarget)
                              .where(CampaignTarget.campaign_id == campaign.id, one_of(CampaignTarget.serial, everyone))
                              .values(wave=wave, attempts=CampaignTarget.attempts + 1))
        if campaign.kind is CampaignKind.RESTART:
            await self._set(session, campaign, fresh, [TargetState.PENDING, TargetState.RETRYING], TargetState.READY)
            await add_chunks(session, campaign, ChunkKind.WRITE, fresh, wave=wave)
        else:
            await add_chunks(session, campaign, ChunkKind.READ, fresh, wave=wave)
        await add_chunks(session, campaign, ChunkKind.VERIFY, reverify, wave=wave)

    async def _wave_failed(self, session: AsyncSession, campaign: Campaign, wave: int) -> bool:
        size = (await session.execute(select(func.count()).select_from(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign.id, CampaignTarget.wave == wave))).scalar_one()
        failed = await self._count(session, campaign, FAILURES, wave=wave)
        if not size or not failed or failed / size < campaign.abort_failure_rate:
            return False
        await self._abort(session, campaign, f"wave {wave}: {failed} of {size} inverters failed "
                                             f"(threshold {campaign.abort_failure_rate:.0%})")
        return True

    async def _give_up(self, session: AsyncSession, campaign: Campaign, expired: bool) -> None:
        """Retries past the deadline or the attempts: offline ones fail; unverified ones are settled."""
        exhausted = [CampaignTarget.campaign_id == campaign.id]
        if not expired:
            exhausted.append(CampaignTarget.attempts >= campaign.max_attempts)
        await session.execute(update(CampaignTarget).where(*exhausted, CampaignTarget.state == TargetState.RETRYING)
                              .values(state=TargetState.FAILED, updated_at=self._clock()))
        if expired:
            await self._settle_unverified(session, campaign, "deadline")
        else:
            await self._settle_unverified(session, campaign, "attempts", max_attempts=campaign.max_attempts)

    async def _settle_unverified(self, session: AsyncSession, campaign: Campaign, why: str, *,
                                 max_attempts: int | None = None) -> None:
        """Inverters that could not be read back: a device-confirmed write stays applied (not verified); a
        potentially-applied or lost one is reported failed with an unknown outcome."""
        where = [CampaignTarget.campaign_id == campaign.id]
        if max_attempts is not None:
            where.append(CampaignTarget.attempts >= max_attempts)
        now = self._clock()
        kind = kind_of_value(campaign.value) if campaign.value is not None else ValueKind.NUMBER
        written = (await session.execute(select(CampaignTarget).where(
            *where, CampaignTarget.state == TargetState.WRITTEN))).scalars().all()
        for target in written:
            step = outcomes.after_write(Answer(value=target.written_value), campaign.value or "", kind, verify=False)
            target.state, target.reason, target.updated_at = step.state, f"not_verified ({why})", now
        await session.execute(update(CampaignTarget).where(
            *where, CampaignTarget.state.in_([TargetState.UNVERIFIED, TargetState.WRITING]))
            .values(state=TargetState.FAILED, reason=f"outcome_unknown ({why})", updated_at=now))

    # --- small queries --------------------------------------------------------------------------------

    async def _count(self, session: AsyncSession, campaign: Campaign, states: Sequence[TargetState], *,
                     wave: int | None = None) -> int:
        where = [CampaignTarget.campaign_id == campaign.id, CampaignTarget.state.in_(states)]
        if wave is not None:
            where.append(CampaignTarget.wave == wave)
        return int((await session.execute(select(func.count()).select_from(CampaignTarget).where(*where)))
                   .scalar_one())

    async def _serials_where(self, session: AsyncSession, campaign: Campaign, states: Sequence[TargetState], *,
                             wave: int | None = None) -> list[str]:
        where = [CampaignTarget.campaign_id == campaign.id, CampaignTarget.state.in_(states)]
        if wave is not None:
            where.append(CampaignTarget.wave == wave)
        rows = await session.execute(select(CampaignTarget.serial).where(*where).order_by(CampaignTarget.serial))
        return list(rows.scalars().all())

    async def _serials_in(self, session: AsyncSession, campaign: Campaign, serials: Sequence[str],
                          states: Sequence[TargetState]) -> list[str]:
        rows = await session.execute(select(CampaignTarget.serial).where(
            CampaignTarget.campaign_id == campaign.id, one_of(CampaignTarget.serial, serials),
            CampaignTarget.state.in_(states)).order_by(CampaignTarget.serial))
        return list(rows.scalars().all())

    async def _set(self, session: AsyncSession, campaign: Campaign, serials: Sequence[str],
                   states: Sequence[TargetState], to: TargetState, reason: str | None = None) -> None:
        await session.execute(update(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign.id, one_of(CampaignTarget.serial, serials),
            CampaignTarget.state.in_(states)).values(state=to, reason=reason, updated_at=self._clock()))


_EXPECTED: dict[ChunkKind, tuple[TargetState, ...]] = {
    ChunkKind.READ: (TargetState.PENDING, TargetState.RETRYING),
    ChunkKind.WRITE: (TargetState.WRITING,),
    ChunkKind.VERIFY: (TargetState.WRITTEN, TargetState.UNVERIFIED, TargetState.WRITING),
    ChunkKind.ROLLBACK_READ: (TargetState.ROLLBACK_PENDING,),
    ChunkKind.ROLLBACK_WRITE: (TargetState.ROLLBACK_WRITING,),
    ChunkKind.ROLLBACK_VERIFY: (TargetState.ROLLBACK_WRITTEN, TargetState.ROLLBACK_WRITING),
}
"""The states a chunk's targets are in when its answer arrives (others moved on, e.g. skipped by a cancel)."""


def _take(target: CampaignTarget, step: Step, kind: ChunkKind) -> None:
    """Record ``step`` on ``target``: the value goes where this kind of answer belongs."""
    target.state, target.reason, target.code = step.state, step.reason, step.code
    if step.value is None:
        return
    if kind is ChunkKind.READ and step.state is not TargetState.RECORDED:
        target.previous_value = step.value
    if kind in WRITE_KINDS:
        target.written_value = step.value if kind is ChunkKind.WRITE else target.written_value
    else:
        target.value_read = step.value
