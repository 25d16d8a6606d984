"""Secrets at rest: tokens only as AES-GCM ciphertext (rotatable by key id), API keys only as digests."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from service.cli import app as cli
from service.core.principal import Principal
from service.core.roles import Role
from service.settings import SecuritySettings, Settings, get_settings
from service.tenants.crypto import (
    KeyRing,
    KeyRingError,
    _write_key_file,
    add_generated_key,
    generate_key,
    key_file_path,
    load_key_ring,
)
from service.tenants.service import ApiKeyService, CredentialService, open_token, rotate_encryption
from tests.tenants.factories import fixed_key_ring, make_tenant

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.super-secret-givenergy-token"


async def raw_rows(session: AsyncSession, table: str) -> list[dict[str, object]]:
    result = await session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
    return [dict(row) for row in result.mappings()]


def flatten(rows: list[dict[str, object]]) -> bytes:
    """Every value of every row, as bytes (bytea columns raw, others as text)."""
    out = b""
    for row in rows:
        for value in row.values():
            out += bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            out += b"|"
    return out


async def test_token_is_stored_only_encrypted(db_session: AsyncSession) -> None:
    ring = fixed_key_ring("k1")
    service = CredentialService(db_session, Principal.cli(await make_tenant(db_session)), ring)
    credential = await service.add(TOKEN)
    raw = flatten(await raw_rows(db_session, "upstream_credentials"))
    assert TOKEN.encode() not in raw
    assert base64.b64encode(TOKEN.encode()) not in raw
    assert b"super-secret" not in raw
    assert TOKEN not in repr(credential)
    assert open_token(ring, credential).get_secret_value() == TOKEN
    assert TOKEN not in repr(open_token(ring, credential))


async def test_api_key_is_stored_only_as_a_digest(db_session: AsyncSession) -> None:
    created = await ApiKeyService(db_session, Principal.cli(await make_tenant(db_session))).create(
        name="ci", role=Role.VIEWER
    )
    secret_part = created.text.rsplit("_", 1)[1]
    raw = flatten(await raw_rows(db_session, "api_keys"))
    assert created.text.encode() not in raw
    assert secret_part.encode() not in raw
    assert created.key.prefix.encode() in raw  # the lookup prefix is public
    assert created.text not in repr(created)


async def test_ciphertext_is_bound_to_its_row(db_session: AsyncSession) -> None:
    ring = fixed_key_ring("k1")
    service = CredentialService(db_session, Principal.cli(await make_tenant(db_session)), ring)
    first, second = await service.add(TOKEN), await service.add("another-token")
    second.secret_ciphertext = first.secret_ciphertext  # copied across rows
    with pytest.raises(KeyRingError):
        open_token(ring, second)


async def test_rotation_reencrypts_and_old_key_still_opens_until_then(db_session: AsyncSession) -> None:
    old_ring = fixed_key_ring("old")
    tenant = await make_tenant(db_session)
    credential = await CredentialService(db_session, Principal.cli(tenant), old_ring).add(TOKEN)
    old_blob = credential.secret_ciphertext
    assert credential.key_id == "old"

    both = fixed_key_ring("old", "new")  # new key added and active; old one still configured
    assert open_token(both, credential).get_secret_value() == TOKEN  # old ciphertext opens by its key id
    later = await CredentialService(db_session, Principal.cli(tenant), both).add("second-token")
    assert later.key_id == "new"

    assert await rotate_encryption(db_session, both) == 1  # only the one still under "old"
    assert credential.key_id == "new"
    assert credential.secret_ciphertext != old_blob
    rows = await raw_rows(db_session, "upstream_credentials")
    assert {row["key_id"] for row in rows} == {"new"}

    new_only = fixed_key_ring("new")  # the old key can now be removed
    assert open_token(new_only, credential).get_secret_value() == TOKEN
    with pytest.raises(KeyRingError, match="no key with id 'old'"):
        open_token(new_only, type(credential)(id=credential.id, tenant_id=credential.tenant_id, key_id="old",
                                              secret_ciphertext=old_blob))
    assert await rotate_encryption(db_session, both) == 0  # idempotent


def test_key_ring_refuses_bad_configuration() -> None:
    with pytest.raises(KeyRingError):
        KeyRing({}, "k")
    with pytest.raises(KeyRingError):
        KeyRing({"k": b"short"}, "k")
    with pytest.raises(KeyRingError):
        KeyRing({"k": b"x" * 32}, "other")


def test_fresh_machine_generates_a_private_key_file(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home")  # type: ignore[call-arg]
    ring = load_key_ring(settings)
    path = key_file_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(json.loads(path.read_text())) == [ring.active_key_id]
    assert load_key_ring(settings).active_key_id == ring.active_key_id  # stable across restarts

    sealed = ring.seal("token", b"row")
    new_id = add_generated_key(settings)
    rotated = load_key_ring(settings)
    assert rotated.active_key_id == new_id
    assert rotated.open(sealed, b"row") == "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    settings = Settings(_env_file=None, home=tmp_path,  # type: ignore[call-arg]
                        security=SecuritySettings.model_validate({"encryption_keys": {"prod-1": key}}))
    assert load_key_ring(settings).active_key_id == "prod-1"
    assert not key_file_path(settings).exists()
    with pytest.raises(KeyRingError, match="come from settings"):
        add_generated_key(settings)


def test_with_key_generation_off_a_missing_key_is_an_error_and_no_file_is_written(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path,  # type: ignore[call-arg]
                        security=SecuritySettings(generate_key_file=False))
    with pytest.raises(KeyRingError, match="GIVFLEET_SECURITY__ENCRYPTION_KEYS"):
        load_key_ring(settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_refuse_to_start_without_keys_when_generation_is_off(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIVFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("GIVFLEET_SECURITY__GENERATE_KEY_FILE", "false")
    monkeypatch.delenv("GIVFLEET_SECURITY__ENCRYPTION_KEYS", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, [command])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "Cannot start: no encryption key is configured" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert list(tmp_path.iterdir()) == []  # neither a key file nor embedded servers


def test_processes_generating_keys_at_once_end_up_with_one(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]
    path = key_file_path(settings)
    _write_key_file(path, {"first": generate_key()}, exclusive=True)
    _write_key_file(path, {"second": generate_key()}, exclusive=True)  # lost the race: keeps the first
    assert load_key_ring(settings).active_key_id == "first"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left behind
