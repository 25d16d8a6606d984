"""The typed input of ``createCampaign``: the campaign file's fields, with targets in the inverter filter's
vocabulary. Checked by :class:`service.campaigns.schemas.CampaignSpec` (the rules REST and the CLI use), each
problem reported on its own field."""

from __future__ import annotations

from datetime import datetime, time

import strawberry

from service.db.models.campaign import CampaignKind

strawberry.enum(CampaignKind, description="What a campaign does to each inverter: WRITE one value, READ one setting "
                                          "everywhere (an audit snapshot), RESTART (setting 83 = 100).")


@strawberry.input(description="Which inverters, in the inverter filter's vocabulary; every criterion given must "
                              "hold. A key restricted to a subtree reaches only its subtree.")
class CampaignTargetsInput:
    account_id: int | None = strawberry.field(default=None, description="In the subtree of this account "
                                                                        "(upstream id).")
    site_ids: list[int] | None = strawberry.field(default=None, name="siteIdIn",
                                                  description="At one of these sites (upstream ids).")
    models: list[str] | None = strawberry.field(default=None, name="modelIn", description="Model is one of these.")
    statuses: list[str] | None = strawberry.field(default=None, name="statusIn",
                                                  description="Status is one of these (case-insensitive).")
    firmware_arm_min: int | None = strawberry.field(default=None, description="ARM firmware at least this.")
    firmware_arm_max: int | None = strawberry.field(default=None, description="ARM firmware at most this.")
    firmware_dsp_min: int | None = strawberry.field(default=None, description="DSP firmware at least this.")
    firmware_dsp_max: int | None = strawberry.field(default=None, description="DSP firmware at most this.")
    serials: list[str] | None = strawberry.field(default=None, name="serialIn", description="Only these inverters.")
    exclude_serials: list[str] | None = strawberry.field(
        default=None, description="Never these inverters (reported as excluded by the filter).")


@strawberry.input(description="How the campaign grows: a canary, then waves growthFactor times larger up to "
                              "maxWaveSize, with a pause between waves.")
class CampaignWavesInput:
    canary_size: int | None = strawberry.field(default=None, description="The first wave (default 10).")
    growth_factor: float | None = strawberry.field(default=None, description="Each wave this many times the last "
                                                                             "(default 4).")
    max_wave_size: int | None = strawberry.field(default=None, description="The largest wave (default 1000).")
    pause_seconds: int | None = strawberry.field(default=None, description="Wait between waves (default 0).")


@strawberry.input(description="When the campaign stops on its own.")
class CampaignAbortInput:
    failure_rate: float | None = strawberry.field(default=None, description="A wave's failure share (default 0.2).")
    failure_count: int | None = strawberry.field(default=None, description="Failures in total (default: none).")


@strawberry.input(description="When waves may start, in the tenant's timezone (an end before the start spans "
                              "midnight).")
class CampaignWindowInput:
    start: time
    end: time
    weekdays: list[int] | None = strawberry.field(default=None, description="0 = Monday ... 6 = Sunday; every day "
                                                                            "if omitted.")


@strawberry.input(description="A campaign: what to do, to which inverters, in which waves, when, and how safely.")
class CampaignInput:
    name: str
    kind: CampaignKind = CampaignKind.WRITE
    setting_id: int | None = strawberry.field(default=None, description="The setting (restart: 83, implied).")
    value: str | None = strawberry.field(default=None, description="The value to write (write only), as text: "
                                                                   "10, true, 07:30.")
    targets: CampaignTargetsInput | None = None
    waves: CampaignWavesInput | None = None
    abort: CampaignAbortInput | None = None
    window: CampaignWindowInput | None = None
    deadline: datetime | None = strawberry.field(default=None, description="Offline inverters are retried until "
                                                                           "then.")
    max_attempts: int | None = strawberry.field(default=None, description="Attempts per inverter at most "
                                                                          "(default 3).")
    retry_after_seconds: int | None = strawberry.field(default=None, description="Wait before a retry wave "
                                                                                 "(default 900).")
    verify: bool | None = strawberry.field(default=None, description="Read every written value back (default "
                                                                     "true).")
    skip_if_set: bool | None = strawberry.field(default=None, description="Never write a value that is already "
                                                                          "stored, EEPROM wear (default true).")
