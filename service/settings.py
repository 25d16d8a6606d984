"""Configuration: pydantic-settings with the ``GIVFLEET_`` prefix and nested groups.

Every field reads from the environment (``GIVFLEET_<FIELD>`` for top-level fields,
``GIVFLEET_<GROUP>__<FIELD>`` for grouped ones) or from a ``.env`` file in the working directory.
The README's configuration table lists every setting; keep the two in step.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class DatabaseSettings(BaseModel):
    """PostgreSQL. With no URL configured, ``givfleet`` starts an embedded server under ``GIVFLEET_HOME``."""

    url: SecretStr | None = Field(default=None, description="SQLAlchemy URL (postgresql+asyncpg://...).")
    pool_size: int = Field(default=10, ge=1, description="Connections kept open per process.")
    max_overflow: int = Field(default=10, ge=0, description="Extra connections allowed under load.")
    idle_ping_seconds: float = Field(default=30.0, ge=0, description=(
        "A pooled connection idle longer than this is pinged when checked out (replaced if dead); busy ones are "
        "not. 0 pings at every checkout. Set it below any server or proxy idle timeout."))
    echo: bool = Field(default=False, description="Log every SQL statement (development only).")


class RedisSettings(BaseModel):
    """Redis for arq queues and the shared rate limiter. With no URL, an embedded Redis is started."""

    url: SecretStr | None = Field(default=None, description="redis://host:port/db")
    namespace: str = Field(
        default="givfleet",
        description="Prefix of every key and of the arq queue name; lets deployments (and test runs) share a Redis.",
    )


DEFAULT_REQUESTS_PER_MINUTE = 300
"""GivEnergy's documented global limit per token."""


class GivEnergySettings(BaseModel):
    """The upstream GivEnergy Cloud."""

    base_url: str = Field(default="https://api.givenergy.cloud/v1", description="Cloud API v1 base URL.")
    legacy_base_url: str = Field(
        default="https://www.givenergy.cloud/GivManage/api", description="Legacy portal API base URL."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one upstream request.")
    control_timeout_seconds: float = Field(
        default=240.0, gt=0, description="Timeout of a control call (settings/multi-control block on the device)."
    )
    default_requests_per_minute: int = Field(
        default=DEFAULT_REQUESTS_PER_MINUTE,
        ge=1,
        description="Global per-credential budget unless a credential sets its own tier.",
    )
    rate_limit_window_seconds: float = Field(
        default=60.0, gt=0, description="Length of the upstream rate-limit window (a minute at GivEnergy)."
    )
    notification_window_seconds: float = Field(
        default=3600.0, gt=0,
        description="Window of the notification/send custom limit (10 per hour at GivEnergy; tests scale it down).",
    )


class SimulatorSettings(BaseModel):
    """The bundled GivEnergy Cloud simulator, started by ``givfleet up`` when no real credential is configured."""

    enabled: bool | None = Field(
        default=None, description="Force the simulator on/off; by default on when no tenant credential exists."
    )
    port: int = Field(default=8081, ge=1, le=65535, description="Port of the simulator started by `givfleet up`.")
    fleet_size: int = Field(default=200, ge=1, description="Inverters generated for the demo fleet.")
    seed: int = Field(default=7, description="Seed of the generated fleet (same seed, same fleet).")
    clock_speed: float = Field(
        default=1.0, ge=0, le=10_000, description="Simulated seconds per real second, at most 10,000 (the side door's "
        "limit too): 1 keeps the demo's times in step with givfleet's own; more speeds the demo's faults, outages and "
        "updates up, its clock running ahead of yours."
    )
    refresh_interval_seconds: int = Field(
        default=60, ge=60, description="How often `up` refreshes the demo tenant (picks up what changed)."
    )


ENCRYPTION_KEY_BYTES = 32
"""Length of an AES-256 key."""


def decode_encryption_key(key_id: str, encoded: str) -> bytes:
    """The AES-256 key ``encoded`` (base64 of 32 bytes) as bytes.

    Raises:
        ValueError: It is not base64 or not 32 bytes long; the message names ``key_id``, never the key.
    """
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {key_id!r} is not valid base64") from None
    if len(key) != ENCRYPTION_KEY_BYTES:
        raise ValueError(f"key {key_id!r} must be base64 of {ENCRYPTION_KEY_BYTES} random bytes, "
                         f"not of {len(key)}")
    return key


class SecuritySettings(BaseModel):
    """Secrets. ``encryption_keys`` maps key ids to base64 AES-256 keys; the newest id encrypts."""

    model_config = ConfigDict(hide_input_in_errors=True)  # built on its own too: its errors never show a key

    encryption_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON object {"key-id": "base64 32-byte key"}; generated under GIVFLEET_HOME when empty.',
    )
    active_key_id: str | None = Field(default=None, description="Key id used for new ciphertexts (default: last).")
    generate_key_file: bool = Field(
        default=True,
        description="With no keys configured, generate a key file under GIVFLEET_HOME; false (containers, "
        "Kubernetes) makes missing keys an error, so no pod ever invents a key of its own.",
    )
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed API-key attempts per client address before it is answered 429."
    )
    auth_failure_window_seconds: int = Field(
        default=300, ge=1, description="Window of the failed-attempt count (and the longest 429 Retry-After)."
    )
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=300, description=(
        "How long a process answers an authenticated API key from memory; revocations and suspensions reach "
        "every process at once over Redis pub/sub. 0: look every key up."))
    trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client address from the last X-Forwarded-For entry (the one a trusted proxy appends).",
    )

    @field_validator("encryption_keys")
    @classmethod
    def _keys_decode(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # Checked at start-up: a bad key found when a token is sealed or opened would fail every request.
        for key_id, key in keys.items():
            decode_encryption_key(key_id, key.get_secret_value())
        return keys

    @field_validator("active_key_id")
    @classmethod
    def _active_key_is_configured(cls, active_key_id: str | None, info: ValidationInfo) -> str | None:
        # Keys from the generated key file are only known when it is read; configured ones are checked here.
        keys = info.data.get("encryption_keys")
        if active_key_id is not None and keys and active_key_id not in keys:
            raise ValueError(f"{active_key_id!r} is not a key id of GIVFLEET_SECURITY__ENCRYPTION_KEYS "
                             f"(it has {', '.join(map(repr, keys))})")
        return active_key_id


class ApiSettings(BaseModel):
    """HTTP API served by ``givfleet api`` / ``givfleet up``."""

    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="Bind port.")
    debug: bool = Field(default=False, description="Litestar debug mode (never in production).")
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300, description=(
        "Longest wait for the next chunk of a request body; a stalled upload is answered 408."))
    keep_alive_seconds: int = Field(default=5, ge=1, le=300, description=(
        "Idle keep-alive connections are closed after this."))
    subscriptions_per_connection: int = Field(default=10, ge=1, le=100, description=(
        "GraphQL subscriptions one WebSocket connection may hold at once."))
    subscriptions_per_key: int = Field(default=50, ge=1, le=10_000, description=(
        "GraphQL subscriptions one API key may hold at once in one API process, over all its connections."))
    subscription_init_timeout_seconds: float = Field(default=10.0, gt=0, le=300, description=(
        "A WebSocket that sends no connection_init within this is closed (4408); also the longest wait for "
        "the process's Redis subscription when a subscription starts (1013 after it)."))
    subscription_key_recheck_seconds: float = Field(default=30.0, ge=0, le=3600, description=(
        "A subscription's key is looked up again before a change is sent once this long has passed since the last "
        "check: a revoked or expired key's connection is closed (4403)."))
    subscription_backlog: int = Field(default=256, ge=1, le=100_000, description=(
        "Changes a subscriber may fall behind before its connection is closed (1013) rather than buffered."))


class SyncSettings(BaseModel):
    """The mirror's syncs (``mirror.sync`` jobs and ``givfleet sync``)."""

    page_size: int = Field(default=1000, ge=1, description="pageSize of upstream list requests.")
    concurrency: int = Field(default=8, ge=1, description="Upstream requests in flight per sync (the limiter paces).")
    full_interval_seconds: int = Field(default=86400, ge=60, description="Default interval of scheduled full syncs.")
    refresh_interval_seconds: int = Field(
        default=900, ge=60, description="Default interval of scheduled refreshes (the dongle list)."
    )
    last_seen_granularity_seconds: int = Field(
        default=86400, ge=0, description="Refresh last_seen_at of unchanged rows at most this often."
    )
    status_batch: int = Field(
        default=200, ge=1, description="Site statuses checked per checkpoint (a retried sync resumes after the last)."
    )


class WorkerSettings(BaseModel):
    """The arq workers (``givfleet worker``; ``givfleet up`` runs one per queue too)."""

    max_jobs: int = Field(
        default=10, ge=1,
        description="Jobs run at once per queue. The worker's database pool holds one connection per job it may run "
        "(max_jobs x queues), plus db.max_overflow for short extra reads.",
    )
    stall_seconds: int = Field(
        default=90, ge=10,
        description="A job's lease: a running job renews it every third of this; a job not renewed for this long "
        "(its worker died) is picked up again by any worker or by the sweeper.",
    )
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0,
        description="On SIGTERM, how long running jobs may take to finish before they are interrupted (they "
        "stay resumable). Keep it below the pod's terminationGracePeriodSeconds.",
    )


class CampaignSettings(BaseModel):
    """The campaign engine (``campaign.tick`` jobs)."""

    lease_seconds: float = Field(
        default=300.0, gt=0,
        description="How long a chunk on the wire belongs to the tick that sent it (longer than a control call).",
    )
    stale_after_seconds: float = Field(
        default=600.0, gt=0, description="A running campaign not ticked for this long is resumed by the sweeper."
    )


class NotificationSettings(BaseModel):
    """Notification deliveries (``notify`` queue): GivEnergy digests, e-mail over SMTP, Standard Webhooks."""

    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail channels (none: e-mail is off).")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (upgrade a plain connection), tls (implicit TLS) or none.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if the server asks for one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(default="givfleet@localhost", description="From address of notification e-mails.")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one SMTP session.")
    digest_max_events: int = Field(
        default=25, ge=1, le=200, description="Most events in one GivEnergy or e-mail digest (the rest wait).")
    givenergy_max_wait_seconds: float = Field(
        default=2.0, ge=0, description="Longest wait for a notification slot; beyond it the digest is deferred.")
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120,
        description="Deadline of one webhook POST, connect to last byte read (below lease_seconds).")
    webhook_concurrency: int = Field(
        default=10, ge=1, le=100, description="Webhook messages a flush sends at once (first attempts).")
    webhook_max_response_bytes: int = Field(
        default=65536, ge=0, description="Most bytes of a webhook answer read (the rest is dropped).")
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs a webhook may target although not globally reachable (default: none).")
    webhook_retry_base_seconds: float = Field(
        default=10.0, gt=0, description="Delay before the first webhook retry; doubled per failure, with jitter.")
    webhook_retry_horizon_seconds: float = Field(
        default=86400.0, gt=0, description="A message is given up when its next retry would fall this long after "
                                           "it was created or last replayed (24 h).")
    webhook_disable_after: int = Field(
        default=10, ge=1, description="Consecutive failed attempts after which a webhook endpoint is disabled "
                                      "(the first of them at least webhook_disable_min_span_seconds earlier).")
    webhook_disable_min_span_seconds: float = Field(
        default=900.0, ge=0, description="A webhook is disabled only when its run of failed attempts spans at "
                                         "least this long (a burst failing together does not disable it).")
    webhook_rotation_overlap_seconds: int = Field(
        default=86400, ge=0, description="How long the old secret keeps signing after a webhook secret rotation.")
    lease_seconds: float = Field(
        default=120.0, gt=0, description="An attempt in flight longer than this is taken as lost (its worker died) "
                                         "and the message is sent again.")

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, cidrs: list[str]) -> list[str]:
        # Checked at start-up: a bad entry found at send time would fail every webhook.
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP network in CIDR notation (e.g. 10.0.0.0/8)") from None
        return cidrs

    @model_validator(mode="after")
    def _deadline_within_lease(self) -> NotificationSettings:
        # An attempt outliving its lease would be sent again while still in flight.
        if self.webhook_timeout_seconds >= self.lease_seconds:
            raise ValueError("webhook_timeout_seconds must be below lease_seconds")
        return self


class LogSettings(BaseModel):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Minimum log level (any case).")
    json_output: bool | None = Field(default=None, description="JSON lines; by default when stderr is not a TTY.")

    @field_validator("level", mode="before")
    @classmethod
    def _level_in_capitals(cls, level: object) -> object:
        # Checked at start-up, in any case: logging would refuse an unknown level with a traceback. Its aliases
        # WARN and FATAL still name their levels.
        if not isinstance(level, str):
            return level
        name = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level.upper(), level.upper())
        if name not in get_args(cls.model_fields["level"].annotation):
            raise ValueError("expected 'DEBUG', 'INFO', 'WARNING' (or 'WARN'), 'ERROR' or 'CRITICAL' (or 'FATAL'), "
                             "in any case")
        return name


class InvalidJsonSettingError(ValueError):
    """A variable of a JSON-valued setting (a group, a mapping, a list) whose value is not JSON, named as set."""

    def __init__(self, variable: str, error: ValueError) -> None:
        super().__init__(f"{variable}: not valid JSON ({error})")


class EnvNamingInvalidJson(EnvSettingsSource):
    """The environment, naming the variable whose JSON does not parse: pydantic-settings names only its group
    (``field "security"`` for a ``GIVFLEET_SECURITY__ENCRYPTION_KEYS`` that is not JSON)."""

    location = ""
    """Where the variables are set, for the message (the environment: nothing to add)."""

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as exc:
            raise InvalidJsonSettingError(self._variable_not_parsed(field_name, field) + self.location, exc) from exc

    def _variable_not_parsed(self, field_name: str, field: FieldInfo) -> str:
        """The group's variable (``GIVFLEET_API``) unless one of its fields' (``GIVFLEET_API__...``) alone fails."""
        for name, value in self.env_vars.items():
            try:
                self.explode_env_vars(field_name, field, {name: value})
            except ValueError:
                return name.upper()
        return f"{self.env_prefix}{field_name}".upper()


class DotEnvNamingInvalidJson(EnvNamingInvalidJson, DotEnvSettingsSource):
    """The ``.env`` file, naming the variable whose JSON does not parse."""

    location = " in .env"


class Settings(BaseSettings):
    """All of givfleet's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GIVFLEET_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        hide_input_in_errors=True,  # an error must not print the secret (an encryption key, a URL) it refuses
    )

    home: Path = Field(default=Path(".givfleet"), description="Where embedded servers and generated keys live.")
    database_url: SecretStr | None = Field(default=None, description="Shortcut for db.url.")
    redis_url: SecretStr | None = Field(default=None, description="Shortcut for redis.url.")
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    givenergy: GivEnergySettings = Field(default_factory=GivEnergySettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The default sources, in their order, but a value that is not JSON is named by its variable (the
        ``.env`` file as given, ``Settings(_env_file=None)`` reading none)."""
        if isinstance(dotenv_settings, DotEnvSettingsSource):
            dotenv_settings = DotEnvNamingInvalidJson(settings_cls, env_file=dotenv_settings.env_file,
                                                      env_file_encoding=dotenv_settings.env_file_encoding)
        return init_settings, EnvNamingInvalidJson(settings_cls), dotenv_settings, file_secret_settings

    def configured_database_url(self) -> str | None:
        """The database URL the user configured, if any (``GIVFLEET_DATABASE_URL`` wins over ``db.url``).

        A plain ``postgresql://`` URL is accepted and given the asyncpg driver.
        """
        secret = self.database_url or self.db.url
        return asyncpg_url(secret.get_secret_value()) if secret else None

    def configured_redis_url(self) -> str | None:
        """The Redis URL the user configured, if any (``GIVFLEET_REDIS_URL`` wins over ``redis.url``)."""
        secret = self.redis_url or self.redis.url
        return secret.get_secret_value() if secret else None


def asyncpg_url(url: str) -> str:
    """Give a PostgreSQL URL the asyncpg driver (``postgresql://`` and ``postgres://`` become
    ``postgresql+asyncpg://``); any other URL is returned unchanged for the caller to validate."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in {"postgresql", "postgres"}:
        return f"postgresql+asyncpg://{rest}"
    return url


def masked_url(url: str) -> str:
    """``url`` to be shown: its password replaced by ``***``. The userinfo's password is everything from the
    colon after the user name to the last ``@`` (a password may hold ``/``, ``#``, ``?`` or ``@``, which a URL
    parser takes for the end of the host part; masking too much is safe), and a ``password=`` query value is one
    too. A URL that does not parse (e.g. an unclosed IPv6 bracket) is shown as its scheme only."""
    try:
        urlsplit(url)
    except ValueError:
        scheme = _SCHEME.match(url)
        return f"{scheme.group() if scheme else ''}*** (unparseable URL)"
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url, count=1))


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
