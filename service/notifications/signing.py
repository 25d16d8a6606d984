"""Standard Webhooks signatures (https://www.standardwebhooks.com/), pure.

A secret is ``whsec_`` + base64 of random bytes. The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``;
its HMAC-SHA256 under the decoded secret, base64-encoded and prefixed ``v1,``, is one signature. During a rotation
each active secret signs, and ``webhook-signature`` lists the signatures separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def webhook_id(message_id: uuid.UUID) -> str:
    """The ``webhook-id`` of a message (the same on every retry and replay)."""
    return f"msg_{message_id.hex}"


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,`` signature of ``body``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret of ``secrets``."""
    if not secrets:
        raise ValueError("a webhook needs at least one active secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets),
    }
