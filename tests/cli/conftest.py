"""Fixtures of the `givfleet` command tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings, get_settings


@pytest.fixture
def cli_env(test_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of `givfleet` commands using the test database and Redis (in this process, too)."""
    assert test_settings.database_url is not None
    assert test_settings.redis_url is not None
    values = {"GIVFLEET_DATABASE_URL": test_settings.database_url.get_secret_value(),
              "GIVFLEET_REDIS_URL": test_settings.redis_url.get_secret_value(),
              "GIVFLEET_REDIS__NAMESPACE": test_settings.redis.namespace, "GIVFLEET_HOME": str(tmp_path),
              "GIVFLEET_LOG__JSON_OUTPUT": "true"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield {**{k: v for k, v in os.environ.items() if not k.startswith("GIVFLEET_")}, **values}
    get_settings.cache_clear()
