"""Campaigns: bulk setting writes, reads and restarts across a tenant's inverters, with their per-inverter outcomes.

A campaign's target set is frozen when it is planned (one :class:`CampaignTarget` row per inverter, excluded
ones included with their reason). The engine works in :class:`CampaignChunk` steps of at most 1,000 serials;
a chunk that goes on the wire is recorded ``sending`` (committed) before its request leaves, so a crash is
resolved by reading, never by re-sending blindly. Every state lives in typed columns.

The per-(model, firmware) setting catalogue learnt from ``GET /inverter/{serial}/settings`` is kept in
:class:`SettingCatalogue` / :class:`CatalogueSetting`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, Timestamps, UUIDPrimaryKey, tenant_fk, value_enum


class CampaignKind(enum.StrEnum):
    """What a campaign does to each inverter."""

    WRITE = "write"
    """Write one value to one setting."""
    READ = "read"
    """Read one setting everywhere (an audit snapshot)."""
    RESTART = "restart"
    """Write setting 83 = 100 (restart the inverter)."""


class CampaignState(enum.StrEnum):
    """Lifecycle of a campaign (see :mod:`service.campaigns.lifecycle` for the allowed moves)."""

    DRAFT = "draft"
    PLANNED = "planned"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


class TargetState(enum.StrEnum):
    """Where one inverter of a campaign stands.

    Non-terminal: ``pending`` (not yet read), ``ready`` (read, to be written), ``retrying`` (offline: tried
    again in a later wave), ``writing`` (in a chunk that went on the wire without a recorded answer),
    ``written`` (the device answered; awaiting read-back), ``unverified`` (a potentially-applied code -1/-5/-6:
    decided by reading, never by writing again), and the rollback counterparts ``rollback_pending``,
    ``rollback_ready``, ``rollback_writing``, ``rollback_written``.
    """

    PENDING = "pending"
    READY = "ready"
    RETRYING = "retrying"
    WRITING = "writing"
    WRITTEN = "written"
    UNVERIFIED = "unverified"
    APPLIED = "applied"
    APPLIED_MODIFIED = "applied_modified"
    NOT_APPLIED = "not_applied"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXCLUDED = "excluded"
    RECORDED = "recorded"
    """Read campaigns: the value was read."""
    ROLLBACK_PENDING = "rollback_pending"
    ROLLBACK_READY = "rollback_ready"
    ROLLBACK_WRITING = "rollback_writing"
    ROLLBACK_WRITTEN = "rollback_written"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CHANGED_SINCE = "changed_since"
    """Rollback left it alone: its value is no longer the one the campaign wrote."""


class ChunkKind(enum.StrEnum):
    """One upstream request of the engine (at most 1,000 serials)."""

    READ = "read"
    """Multi-read before writing: rollback values and already-set detection (or the snapshot of a read campaign)."""
    WRITE = "write"
    VERIFY = "verify"
    """Multi-read after writing (read-back), or to resolve a write whose answer was lost."""
    ROLLBACK_READ = "rollback_read"
    ROLLBACK_WRITE = "rollback_write"
    ROLLBACK_VERIFY = "rollback_verify"


class ChunkState(enum.StrEnum):
    """A chunk's progress: ``sending`` is committed before the request leaves."""

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


_CAMPAIGN_STATE = value_enum(CampaignState, "campaign_state")
_TARGET_STATE = value_enum(TargetState, "campaign_target_state")


class Campaign(UUIDPrimaryKey, Timestamps, Base):
    """A bulk operation on one setting of a frozen set of a tenant's inverters."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_tenant_id_state", "tenant_id", "state"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(value_enum(CampaignKind, "campaign_kind"))
    setting_id: Mapped[int] = mapped_column(Integer)
    # The value as text (``true``/``false``, ``20``, ``07:30``); ``None`` for read campaigns.
    value: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[CampaignState] = mapped_column(_CAMPAIGN_STATE, default=CampaignState.DRAFT)

    # Targets, in the GraphQL inverter filter's vocabulary (``None``: no criterion).
    restricted_account_id: Mapped[int | None] = mapped_column(BigInteger)
    """The subtree of the key that created the campaign: it can only target inverters there."""
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    site_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    models: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    statuses: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    firmware_arm_min: Mapped[int | None] = mapped_column(Integer)
    firmware_arm_max: Mapped[int | None] = mapped_column(Integer)
    firmware_dsp_min: Mapped[int | None] = mapped_column(Integer)
    firmware_dsp_max: Mapped[int | None] = mapped_column(Integer)
    serials: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    excluded_serials: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)

    # Waves.
    canary_size: Mapped[int] = mapped_column(Integer, default=10)
    growth_factor: Mapped[float] = mapped_column(Float, default=4.0)
    max_wave_size: Mapped[int] = mapped_column(Integer, default=1000)
    wave_pause_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # Abort thresholds: failure share of one wave, and failures in total.
    abort_failure_rate: Mapped[float] = mapped_column(Float, default=0.2)
    abort_failure_count: Mapped[int | None] = mapped_column(Integer)
    # Window, in the tenant's timezone: waves start only inside it. Weekdays 0 = Monday.
    window_start: Mapped[time | None] = mapped_column(Time)
    window_end: Mapped[time | None] = mapped_column(Time)
    window_weekdays: Mapped[list[int] | None] = mapped_column(ARRAY(SmallInteger))
    # Retries of offline inverters (-2) in later waves, until the deadline and at most this many attempts.
    deadline: Mapped[datetime | None]
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_after_seconds: Mapped[int] = mapped_column(Integer, default=900)
    verify: Mapped[bool] = mapped_column(Boolean, default=True)
    skip_if_set: Mapped[bool] = mapped_column(Boolean, default=True)

    # Who and when.
    created_by: Mapped[str] = mapped_column(String(100))
    created_by_key_id: Mapped[uuid.UUID | None]
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_by_key_id: Mapped[uuid.UUID | None]
    planned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    state_reason: Mapped[str | None] = mapped_column(String(300))

    # Engine.
    target_count: Mapped[int] = mapped_column(Integer, default=0)
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    wave_count: Mapped[int] = mapped_column(Integer, default=0)
    tick_seq: Mapped[int] = mapped_column(Integer, default=0)
    """Sequence of the tick chain: a tick whose number is not the current one stops (a sweeper took over)."""
    next_step_at: Mapped[datetime | None]
    """The next wave may not start before this (pause between waves, retry delay, window)."""
    heartbeat_at: Mapped[datetime | None]
    requests_used: Mapped[int] = mapped_column(Integer, default=0)
    rewrites: Mapped[int] = mapped_column(Integer, default=0)
    """Inverters written again because a lost answer was resolved by reading and showed them unchanged."""


class CampaignTarget(UUIDPrimaryKey, Base):
    """One inverter of a campaign and what happened to it."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "serial"),
        Index("ix_campaign_targets_campaign_id_state", "campaign_id", "state"),
        Index("ix_campaign_targets_tenant_id_serial", "tenant_id", "serial"),
        Index("ix_campaign_targets_chunk_id", "chunk_id"),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    serial: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))
    firmware_arm: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    """The inverter's status when the campaign was planned."""
    state: Mapped[TargetState] = mapped_column(_TARGET_STATE, default=TargetState.PENDING)
    reason: Mapped[str | None] = mapped_column(String(300))
    """Why it was excluded, skipped or failed (``offline``, ``already_set``, ``locked``...)."""
    wave: Mapped[int | None] = mapped_column(Integer)
    chunk_id: Mapped[uuid.UUID | None]
    """The chunk this target is in now."""
    previous_value: Mapped[str | None] = mapped_column(String(64))
    """The value read before writing: what rollback restores."""
    written_value: Mapped[str | None] = mapped_column(String(64))
    """What the device answered to the write (differs from the campaign value when it clamped)."""
    value_read: Mapped[str | None] = mapped_column(String(64))
    """The value last read from the device."""
    code: Mapped[int | None] = mapped_column(SmallInteger)
    """The last remote-control code (-1..-7) the device answered, if any."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    writes: Mapped[int] = mapped_column(Integer, default=0)
    """Write requests that carried this inverter (1 normally; 2 after a documented re-write)."""
    updated_at: Mapped[datetime | None]


class CampaignChunk(UUIDPrimaryKey, Base):
    """One upstream request of the engine: its kind, serials, value, and whether it went on the wire."""

    __tablename__ = "campaign_chunks"
    __table_args__ = (Index("ix_campaign_chunks_campaign_id_state", "campaign_id", "state"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    wave: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    """Order of creation within the campaign (chunks are taken in this order)."""
    kind: Mapped[ChunkKind] = mapped_column(value_enum(ChunkKind, "campaign_chunk_kind"))
    state: Mapped[ChunkState] = mapped_column(
        value_enum(ChunkState, "campaign_chunk_state"), default=ChunkState.PENDING
    )
    serials: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    value: Mapped[str | None] = mapped_column(String(64))
    """The value written (write chunks; each rollback chunk carries one distinct previous value)."""
    lease_until: Mapped[datetime | None]
    """While ``sending``: the tick that sent it may still record it until then; after, it was lost."""
    sent_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]


class SettingCatalogue(UUIDPrimaryKey, Base):
    """The settings one (model, ARM firmware) group offers, learnt once from one of its inverters."""

    __tablename__ = "setting_catalogues"
    __table_args__ = (UniqueConstraint("tenant_id", "model", "firmware_arm"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    model: Mapped[str] = mapped_column(String(64))
    firmware_arm: Mapped[str] = mapped_column(String(32))
    source_serial: Mapped[str] = mapped_column(String(64))
    learned_at: Mapped[datetime]


class CatalogueSetting(UUIDPrimaryKey, Base):
    """One setting of a :class:`SettingCatalogue`, with its validation rules as listed upstream."""

    __tablename__ = "catalogue_settings"
    __table_args__ = (UniqueConstraint("catalogue_id", "setting_id"),)

    catalogue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("setting_catalogues.id", ondelete="CASCADE"))
    setting_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(200))
    validation: Mapped[str | None] = mapped_column(String(300))
    rules: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)


class FirmwareWatch(UUIDPrimaryKey, Timestamps, Base):
    """A firmware cohort (one model, an ARM firmware range, optionally an account subtree) followed towards a
    target ARM version. Its members are frozen when it is created (:class:`FirmwareWatchMember`); their progress
    is read from the mirror (firmware, status, firmware history)."""

    __tablename__ = "firmware_watches"
    __table_args__ = (Index("ix_firmware_watches_tenant_id_created_at", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(64))
    firmware_arm_min: Mapped[int | None] = mapped_column(Integer)
    firmware_arm_max: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    target_firmware_arm: Mapped[int] = mapped_column(Integer)
    straggler_days: Mapped[int] = mapped_column(Integer)
    """A member still behind this many days after the watch started is a straggler."""
    restricted_account_id: Mapped[int | None] = mapped_column(BigInteger)
    """The subtree of the key that created the watch: only keys of that subtree (or whole-tenant ones) see it."""
    started_at: Mapped[datetime]
    member_count: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_by_key_id: Mapped[uuid.UUID | None]
    last_restart_campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"))
    """The newest restart campaign made for its stragglers."""


class FirmwareWatchMember(UUIDPrimaryKey, Base):
    """An inverter of a firmware watch's cohort, with the ARM firmware it had when the watch started."""

    __tablename__ = "firmware_watch_members"
    __table_args__ = (UniqueConstraint("watch_id", "serial"),)

    watch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("firmware_watches.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    serial: Mapped[str] = mapped_column(String(64))
    firmware_arm_at_start: Mapped[str | None] = mapped_column(String(32))
