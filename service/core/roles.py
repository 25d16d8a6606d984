"""The roles an API key can hold (a domain notion; the ORM stores them, the policy ranks them)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What a key may do: viewer reads; operator also acts (syncs, campaigns, alerts); admin also manages access."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of privilege (a higher rank includes every lower one)."""
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
