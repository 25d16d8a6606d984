"""Domain errors. Adapters (REST, GraphQL, CLI) translate them into their own error shapes."""

from __future__ import annotations


class GivfleetError(Exception):
    """Base of every error the domain raises on purpose; its message is safe to show a user."""


class NotFoundError(GivfleetError):
    """The thing does not exist, or belongs to another tenant (the two are never told apart)."""


class ConflictError(GivfleetError):
    """The request conflicts with the current state (e.g. a duplicate slug)."""


class InvalidInputError(GivfleetError):
    """The input is malformed or out of range."""


class PermissionDeniedError(GivfleetError):
    """The principal is authenticated but its role does not allow the action."""
