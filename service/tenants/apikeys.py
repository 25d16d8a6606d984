"""The API key format: ``gvf_<prefix>_<secret>``.

The prefix (public, unique) finds the row; only a SHA-256 digest of the whole key is stored. The secret
carries 256 bits of randomness, so a fast digest is enough (there is nothing to brute-force) and compare is
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

KEY_SCHEME = "gvf"
PREFIX_LENGTH = 10
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the full text (shown once), its prefix and its digest."""

    text: str
    prefix: str
    digest: bytes

    def __repr__(self) -> str:
        return f"NewKey(prefix={self.prefix!r})"


def digest(text: str) -> bytes:
    """The stored digest of a key's full text."""
    return hashlib.sha256(text.encode()).digest()


def generate() -> NewKey:
    """A new random key."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    text = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(text=text, prefix=prefix, digest=digest(text))


def prefix_of(text: str) -> str | None:
    """The lookup prefix of a presented key, or ``None`` when it is not shaped like one of ours."""
    scheme, _, rest = text.partition("_")
    prefix, separator, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not separator or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return prefix


def matches(text: str, stored_digest: bytes) -> bool:
    """Whether ``text`` is the key whose digest is ``stored_digest`` (constant time)."""
    return hmac.compare_digest(digest(text), stored_digest)
