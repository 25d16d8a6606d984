"""Configuration precedence and URL normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import SecuritySettings, Settings, masked_url


def test_environment_and_nested_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", "postgresql://u:p@db:5432/fleet")
    monkeypatch.setenv("GIVFLEET_API__PORT", "9000")
    monkeypatch.setenv("GIVFLEET_REDIS__NAMESPACE", "acme")
    settings = Settings()
    assert settings.configured_database_url() == "postgresql+asyncpg://u:p@db:5432/fleet"
    assert settings.api.port == 9000
    assert settings.redis.namespace == "acme"
    assert settings.configured_redis_url() is None


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GIVFLEET_REDIS_URL=redis://from-dotenv:6379/0\nGIVFLEET_API__HOST=0.0.0.0\n")
    monkeypatch.setenv("GIVFLEET_API__HOST", "10.0.0.5")
    settings = Settings()
    assert settings.configured_redis_url() == "redis://from-dotenv:6379/0"
    assert settings.api.host == "10.0.0.5"


def test_secrets_are_not_in_the_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", "postgresql://u:topsecret@db/fleet")
    assert "topsecret" not in repr(Settings())


@pytest.mark.parametrize("cidr", ["10.0.0.0/8 ", "localhost", "10.0.0.0/33"])
def test_a_bad_webhook_allowed_network_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              cidr: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS", json.dumps([cidr]))
    with pytest.raises(ValidationError, match="webhook_allowed_networks"):
        Settings()


@pytest.mark.parametrize(("given", "level"), [("warning", "WARNING"), ("warn", "WARNING"), ("Fatal", "CRITICAL")])
def test_the_log_level_is_read_in_any_case_and_by_its_aliases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              given: str, level: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_LOG__LEVEL", given)
    assert Settings().log.level == level


def test_an_unknown_log_level_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_LOG__LEVEL", "LOUD")
    with pytest.raises(ValidationError, match=r"log\.level"):
        Settings()


def test_a_refused_encryption_key_is_not_in_the_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Every entry point that fails to read its settings may print or log this error.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIVFLEET_SECURITY__ENCRYPTION_KEYS", '{"a": "c2hvcnQta2V5LW1hdGVyaWFs"}')
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "key 'a' must be base64 of 32 random bytes, not of 18" in str(refused.value)
    assert "c2hvcnQta2V5LW1hdGVyaWFs" not in str(refused.value)
    with pytest.raises(ValidationError) as built_alone:  # the security group built on its own hides it too
        SecuritySettings(encryption_keys={"a": "c2hvcnQta2V5LW1hdGVyaWFs"})
    assert "c2hvcnQta2V5LW1hdGVyaWFs" not in str(built_alone.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:hun/ter2@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ("redis://:a#b?c@h:1/0", "redis://:***@h:1/0"),
    ("https://u:p@q@host/v1", "https://u:***@host/v1"),
    ("redis://h:6379/0?db=1&Password=secret", "redis://h:6379/0?db=1&Password=***"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("redis://u:hunter2@[::1", "redis://*** (unparseable URL)"),
])
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown
