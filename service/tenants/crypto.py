"""Encryption of upstream secrets at rest: AES-256-GCM under a key ring with key ids.

Each ciphertext records the id of the key that sealed it, so keys can be rotated: new ciphertexts use the
active key, old ones still open with the key named by their id until ``givfleet admin rotate-key`` re-seals
them. Associated data binds a ciphertext to its row (a ciphertext copied onto another row does not open).

When no key is configured (``GIVFLEET_SECURITY__ENCRYPTION_KEYS`` empty), a key file is generated under
``GIVFLEET_HOME`` (mode 0600) so a fresh machine works; configure keys explicitly in production. Where the home
is not durable or not shared (containers: each pod would seal with a key of its own and lose it on restart),
``GIVFLEET_SECURITY__GENERATE_KEY_FILE=false`` turns a missing key into an error instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.settings import ENCRYPTION_KEY_BYTES, Settings, decode_encryption_key

KEY_FILE_NAME = "encryption-keys.json"
_NONCE_BYTES = 12


class KeyRingError(Exception):
    """The key ring is misconfigured, or a ciphertext cannot be opened (unknown key id, tampering)."""


@dataclass(frozen=True)
class Sealed:
    """A ciphertext (nonce || ciphertext || tag) and the id of the key that sealed it."""

    key_id: str
    blob: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, bytes={len(self.blob)})"


class KeyRing:
    """AES-256-GCM keys by id; one of them (the active key) seals new secrets.

    Args:
        keys: Key id -> 32-byte key.
        active_key_id: The id that seals; must be one of ``keys``.
    """

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        if active_key_id not in keys:
            raise KeyRingError(f"active key id {active_key_id!r} is not among the configured keys")
        for key_id, key in keys.items():
            if len(key) != ENCRYPTION_KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} must be {ENCRYPTION_KEY_BYTES} bytes (base64 of 32 random bytes)")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={sorted(self._ciphers)!r}, active={self.active_key_id!r})"

    @property
    def key_ids(self) -> frozenset[str]:
        """Every id this ring can open."""
        return frozenset(self._ciphers)

    def seal(self, plaintext: str, associated_data: bytes) -> Sealed:
        """Encrypt ``plaintext`` with the active key, binding ``associated_data``."""
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._ciphers[self.active_key_id]
        return Sealed(self.active_key_id, nonce + cipher.encrypt(nonce, plaintext.encode(), associated_data))

    def open(self, sealed: Sealed, associated_data: bytes) -> str:
        """Decrypt with the key named by ``sealed.key_id``.

        Raises:
            KeyRingError: The key id is unknown, or the ciphertext or associated data were altered.
        """
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise KeyRingError(f"no key with id {sealed.key_id!r} is configured; cannot decrypt")
        nonce, body = sealed.blob[:_NONCE_BYTES], sealed.blob[_NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, body, associated_data).decode()
        except InvalidTag:
            raise KeyRingError("ciphertext failed authentication (wrong row or tampered)") from None

    def reseal(self, sealed: Sealed, associated_data: bytes) -> Sealed:
        """``sealed`` re-encrypted with the active key (returned unchanged when already under it)."""
        if sealed.key_id == self.active_key_id:
            return sealed
        return self.seal(self.open(sealed, associated_data), associated_data)


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded (the form settings and the key file hold)."""
    return base64.b64encode(secrets.token_bytes(ENCRYPTION_KEY_BYTES)).decode()


def _decode(key_id: str, value: str) -> bytes:
    try:
        return decode_encryption_key(key_id, value)
    except ValueError as exc:
        raise KeyRingError(str(exc)) from None


def key_file_path(settings: Settings) -> Path:
    """Where the generated key file lives."""
    return settings.home / KEY_FILE_NAME


def _read_key_file(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise KeyRingError(f"{path} must hold a JSON object of key id -> base64 key")
    return {str(k): v for k, v in data.items()}


def _write_key_file(path: Path, keys: Mapping[str, str], *, exclusive: bool = False) -> None:
    """Write the key file atomically; ``exclusive`` never replaces an existing file (two processes starting
    on a fresh machine must end up with one key, not each its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(dict(keys), handle, indent=2)
        os.chmod(temporary, 0o600)
        if exclusive:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        else:
            temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _new_key_id() -> str:
    return f"k{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


def load_key_ring(settings: Settings) -> KeyRing:
    """The key ring named by settings, or by the key file under ``GIVFLEET_HOME`` (created when missing, unless
    ``security.generate_key_file`` is off).

    The active key is ``security.active_key_id`` when set, else the last key listed. A key file is read again
    only when it has changed (``givfleet admin rotate-key --generate`` in another process), so long-running
    processes pick up a new key without a restart and without reading the file on every call.
    """
    configured = {key_id: secret.get_secret_value() for key_id, secret in settings.security.encryption_keys.items()}
    if configured:
        return _ring(configured, settings.security.active_key_id)
    path = key_file_path(settings)
    if not path.exists():
        if not settings.security.generate_key_file:
            raise KeyRingError(
                "no encryption key is configured: set GIVFLEET_SECURITY__ENCRYPTION_KEYS "
                "(generating a key file is off: GIVFLEET_SECURITY__GENERATE_KEY_FILE=false)"
            )
        _write_key_file(path, {_new_key_id(): generate_key()}, exclusive=True)
    status = path.stat()  # size too: mtimes can be coarser than two quick writes, and a new key grows the file
    stamp = (path.resolve(), status.st_mtime_ns, status.st_size, settings.security.active_key_id)
    cached = _FILE_RINGS.get(stamp[0])
    if cached is None or cached[0] != stamp:
        cached = (stamp, _ring(_read_key_file(path), settings.security.active_key_id))
        _FILE_RINGS[stamp[0]] = cached
    return cached[1]


_FILE_RINGS: dict[Path, tuple[tuple[Path, int, int, str | None], KeyRing]] = {}


def _ring(configured: dict[str, str], active_key_id: str | None) -> KeyRing:
    keys = {key_id: _decode(key_id, value) for key_id, value in configured.items()}
    return KeyRing(keys, active_key_id or list(keys)[-1])


def add_generated_key(settings: Settings) -> str:
    """Append a new key to the generated key file (it becomes the active one); return its id.

    Raises:
        KeyRingError: Keys are configured in settings (add the new key there instead).
    """
    if settings.security.encryption_keys:
        raise KeyRingError(
            "encryption keys come from settings: add a new key to GIVFLEET_SECURITY__ENCRYPTION_KEYS "
            "and set GIVFLEET_SECURITY__ACTIVE_KEY_ID to it"
        )
    path = key_file_path(settings)
    keys = _read_key_file(path) if path.exists() else {}
    key_id = _new_key_id()
    while key_id in keys:
        key_id = _new_key_id()
    keys[key_id] = generate_key()
    _write_key_file(path, keys)
    return key_id
