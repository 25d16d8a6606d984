"""What a campaign is made of (the input of REST, GraphQL, the CLI's campaign file) and what its plan says."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RESTART_SETTING = 83
RESTART_VALUE = 100
MAX_LISTED_SERIALS = 100_000
"""Serials a campaign may list (targets or exclusions)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetSpec(_Strict):
    """Which inverters, in the GraphQL inverter filter's vocabulary; every criterion given must hold."""

    account_id: int | None = Field(default=None, description="In the subtree of this account (upstream id).")
    site_ids: list[int] | None = Field(default=None, description="At one of these sites (upstream ids).")
    models: list[str] | None = Field(default=None, description="Model is one of these, e.g. [\"GIV-HY5.0\"].")
    statuses: list[str] | None = Field(default=None, description="Status is one of these (case-insensitive).")
    firmware_arm_min: int | None = Field(default=None, description="ARM firmware at least this.")
    firmware_arm_max: int | None = Field(default=None, description="ARM firmware at most this.")
    firmware_dsp_min: int | None = Field(default=None, description="DSP firmware at least this.")
    firmware_dsp_max: int | None = Field(default=None, description="DSP firmware at most this.")
    serials: list[str] | None = Field(default=None, max_length=MAX_LISTED_SERIALS, description="Only these inverters.")
    exclude_serials: list[str] = Field(default_factory=list, max_length=MAX_LISTED_SERIALS,
                                       description="Never these inverters (reported as excluded by the filter).")


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

    @model_validator(mode="after")
    def _days(self) -> WindowSpec:
        if self.weekdays is not None and (not self.weekdays or any(day not in range(7) for day in self.weekdays)):
            raise ValueError("weekdays must be numbers 0 (Monday) to 6 (Sunday), at least one")
        if self.start == self.end:
            raise ValueError("the window's start and end must differ")
        return self


class CampaignSpec(_Strict):
    """A campaign as its author writes it (the README shows a campaign file)."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["write", "read", "restart"] = "write"
    setting_id: int | None = Field(default=None, ge=0, le=100_000,
                                   description="The setting (restart: 83, implied).")
    value: bool | int | float | str | None = Field(default=None, description="The value to write (write only).")
    targets: TargetSpec = Field(default_factory=TargetSpec)
    waves: WaveSpec = Field(default_factory=WaveSpec)
    abort: AbortSpec = Field(default_factory=AbortSpec)
    window: WindowSpec | None = None
    deadline: datetime | None = Field(default=None, description="Offline inverters are retried until then.")
    max_attempts: int = Field(default=3, ge=1, le=100, description="Attempts per inverter at most.")
    retry_after_seconds: int = Field(default=900, ge=0, le=7 * 86400, description="Wait before a retry wave.")
    verify: bool = Field(default=True, description="Read every written value back.")
    skip_if_set: bool = Field(default=True, description="Never write a value that is already stored (EEPROM wear).")

    @model_validator(mode="after")
    def _kind(self) -> CampaignSpec:
        if self.kind == "restart":
            if self.setting_id not in (None, RESTART_SETTING) or self.value not in (None, RESTART_VALUE):
                raise ValueError("a restart campaign writes setting 83 = 100; leave setting_id and value out")
            self.setting_id, self.value = RESTART_SETTING, RESTART_VALUE
        elif self.setting_id is None:
            raise ValueError("setting_id is required")
        if self.kind == "write" and self.value is None:
            raise ValueError("a write campaign needs a value")
        if self.kind == "read" and self.value is not None:
            raise ValueError("a read campaign takes no value")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ValueError("the deadline needs a timezone (e.g. 2026-12-01T18:00:00Z)")
        return self


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
    eta_seconds: float | None = Field(description="Expected remaining time at the campaign lane's capacity.")


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
