"""What a campaign is made of (the input of REST, GraphQL, the CLI's campaign file) and what its plan says."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.campaigns.values import canonical
from service.core.limits import UpstreamId
from service.core.text import NO_CONTROL, Name, plain

RESTART_SETTING = 83
RESTART_VALUE = 100
MAX_LISTED_SERIALS = 100_000
"""Serials a campaign may list (targets or exclusions)."""

MAX_VALUE_LENGTH = 64
"""Characters of a value as text (what the campaign's value column keeps)."""

Serial = Annotated[str, StringConstraints(max_length=64), NO_CONTROL]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]
"""An inverter model, e.g. ``GIV-HY5.0``."""
Status = Annotated[str, StringConstraints(max_length=32), NO_CONTROL]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetSpec(_Strict):
    """Which inverters, in the GraphQL inverter filter's vocabulary; every criterion given must hold."""

    account_id: UpstreamId | None = Field(default=None, description="In the subtree of this account (upstream id).")
    site_ids: list[UpstreamId] | None = Field(default=None, description="At one of these sites (upstream ids).")
    models: list[ModelName] | None = Field(default=None, description="Model is one of these, e.g. [\"GIV-HY5.0\"].")
    statuses: list[Status] | None = Field(default=None, description="Status is one of these (case-insensitive).")
    firmware_arm_min: int | None = Field(default=None, description="ARM firmware at least this.")
    firmware_arm_max: int | None = Field(default=None, description="ARM firmware at most this.")
    firmware_dsp_min: int | None = Field(default=None, description="DSP firmware at least this.")
    firmware_dsp_max: int | None = Field(default=None, description="DSP firmware at most this.")
    serials: list[Serial] | None = Field(default=None, max_length=MAX_LISTED_SERIALS,
                                            description="Only these inverters.")
    exclude_serials: list[Serial] = Field(default_factory=list, max_length=MAX_LISTED_SERIALS,
                                       description="Never these inverters (reported as excluded by the filter).")

    @property
    def has_criteria(self) -> bool:
        """Whether any criterion narrows the targets (none: the whole fleet, ``exclude_serials`` aside)."""
        return any(getattr(self, name) is not None for name in type(self).model_fields if name != "exclude_serials")


class WaveSpec(_Strict):
    """How the campaign grows: a canary, then waves ``growth_factor`` times larger up to ``max_wave_size``."""

    canary_size: int = Field(default=10, ge=1, le=100_000)
    growth_factor: float = Field(default=4.0, ge=1.0, le=100.0)
    max_wave_size: int = Field(default=1000, ge=1, le=100_000)
    pause_seconds: int = Field(default=0, ge=0, le=7 * 86400, description="Wait between waves.")


class AbortSpec(_Strict):
    """When to stop on its own: a wave's failure share, or failures in total."""

    failure_rate: float = Field(default=0.2, gt=0.0, le=1.0, description="Abort when a wave fails at least this share.")
    failure_count: int | None = Field(default=None, ge=1, description="Abort after this many failures in total.")


class WindowSpec(_Strict):
    """When waves may start, in the tenant's timezone (an end before the start spans midnight)."""

    start: time
    end: time
    weekdays: list[int] | None = Field(default=None, description="0 = Monday ... 6 = Sunday; every day if omitted.")

    @field_validator("weekdays")
    @classmethod
    def _days(cls, weekdays: list[int] | None) -> list[int] | None:
        if weekdays is not None and (not weekdays or any(day not in range(7) for day in weekdays)):
            raise ValueError("weekdays must be numbers 0 (Monday) to 6 (Sunday), at least one")
        return weekdays

    @model_validator(mode="after")
    def _span(self) -> WindowSpec:
        if self.start == self.end:
            raise ValueError("the window's start and end must differ")
        return self


class CampaignSpec(_Strict):
    """A campaign as its author writes it (the README shows a campaign file)."""

    name: Name
    kind: Literal["write", "read", "restart"] = "write"
    setting_id: int | None = Field(default=None, ge=0, le=100_000, validate_default=True,
                                   description="The setting (restart: 83, implied).")
    value: bool | int | float | str | None = Field(default=None, validate_default=True,
                                                  description="The value to write (write only).")
    targets: TargetSpec = Field(default_factory=TargetSpec)
    waves: WaveSpec = Field(default_factory=WaveSpec)
    abort: AbortSpec = Field(default_factory=AbortSpec)
    window: WindowSpec | None = None
    deadline: datetime | None = Field(default=None, description="Offline inverters are retried until then.")
    max_attempts: int = Field(default=3, ge=1, le=100, description="Attempts per inverter at most.")
    retry_after_seconds: int = Field(default=900, ge=0, le=7 * 86400, description="Wait before a retry wave.")
    verify: bool = Field(default=True, description="Read every written value back.")
    skip_if_set: bool = Field(default=True, description="Never write a value that is already stored (EEPROM wear).")

    # Each rule is checked on its own field (so an error names it); kind is declared first, so it is known here.

    @field_validator("setting_id")
    @classmethod
    def _setting(cls, setting_id: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind == "restart":
            if setting_id not in (None, RESTART_SETTING):
                raise ValueError(f"a restart campaign writes setting {RESTART_SETTING}; leave setting_id out")
            return RESTART_SETTING
        if kind is not None and setting_id is None:
            raise ValueError("setting_id is required")
        return setting_id

    @field_validator("value")
    @classmethod
    def _value(cls, value: bool | int | float | str | None, info: ValidationInfo) -> bool | int | float | str | None:
        kind = info.data.get("kind")
        if kind == "restart":
            if canonical(value) not in (None, canonical(RESTART_VALUE)):
                raise ValueError(f"a restart campaign writes the value {RESTART_VALUE}; leave value out")
            return RESTART_VALUE
        if kind == "write" and value is None:
            raise ValueError("a write campaign needs a value")
        if kind == "read" and value is not None:
            raise ValueError("a read campaign takes no value")
        if isinstance(value, str) and len(plain(value)) > MAX_VALUE_LENGTH:
            raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, deadline: datetime | None) -> datetime | None:
        if deadline is not None and deadline.tzinfo is None:
            raise ValueError("the deadline needs a timezone (e.g. 2026-12-01T18:00:00Z)")
        return deadline


class Bucket(BaseModel):
    """A count of inverters sharing a value."""

    value: str | None
    count: int


class Exclusion(BaseModel):
    """An inverter left out of the campaign, and why."""

    serial: str
    reason: str


class PlanView(BaseModel):
    """The dry run: who would be touched, who not and why, in how many waves, for how many requests, how long."""

    matched: int = Field(description="Inverters the targets matched (excluded ones included).")
    targets: int = Field(description="Inverters the campaign will act on.")
    by_model: list[Bucket]
    by_firmware: list[Bucket]
    by_status: list[Bucket]
    exclusions: list[Exclusion]
    exclusions_by_reason: list[Bucket]
    waves: list[int] = Field(description="Wave sizes in order.")
    requests: int = Field(description="Upstream requests when nothing is retried (skip-if-set can only lower it).")
    catalogue_requests: int = Field(description="Setting-catalogue reads made for this plan (once per model/firmware).")
    requests_per_minute: int = Field(description="The campaign lane's expected capacity at the credential's tier.")
    eta_seconds: float = Field(description="Expected duration at that capacity, wave pauses included.")
    needs_approval: bool
    warnings: list[str]


class CampaignView(BaseModel):
    """A campaign, its progress per target state and its expected remaining time."""

    id: uuid.UUID
    name: str
    kind: str
    setting_id: int
    value: str | None
    state: str
    state_reason: str | None
    target_count: int
    wave_count: int
    current_wave: int
    requests_used: int
    rewrites: int = Field(description="Inverters written again after a lost answer showed them unchanged.")
    created_by: str
    approved_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="Targets per state (excluded ones included).")
    next_step_at: datetime | None = Field(description=(
        "While running, between waves: when the next wave may start (after the wave pause, the retry delay of "
        "offline inverters, or at the window's next opening); null otherwise."))
    eta_seconds: float | None = Field(description=(
        "Expected remaining time at the campaign lane's capacity, the wait until next_step_at included."))


class TargetView(BaseModel):
    """One inverter of a campaign and what happened to it."""

    serial: str
    model: str | None
    firmware_arm: str | None
    state: str
    reason: str | None
    wave: int | None
    previous_value: str | None = Field(description="Read before writing: what rollback restores.")
    written_value: str | None = Field(description="What the device answered to the write.")
    value_read: str | None = Field(description="The value last read from the device.")
    code: int | None = Field(description="The last remote-control code (-1..-7), if any.")
    attempts: int
    writes: int


class CreatedView(BaseModel):
    """A created campaign (``campaign`` is null for a dry run) and its plan."""

    campaign: CampaignView | None
    plan: PlanView
