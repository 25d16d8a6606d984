"""Opaque keyset cursors shared by the REST and GraphQL adapters.

A cursor encodes the sort key of the last row a client saw (the sort column's value and the row id, which
breaks ties), so the next page is ``WHERE (sort, id) > (value, id)``: stable under concurrent inserts and as
fast on page 1,000 as on page 1. Cursors are opaque to clients (URL-safe base64 of JSON); a malformed or
tampered cursor is an :class:`~service.core.errors.InvalidInputError`, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from service.core.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

CursorValue = str | int | float | bool | None


@dataclass(frozen=True)
class Cursor:
    """The position after a row: its sort key (``sort`` names the ordering so a cursor cannot be reused with
    another one) and its id."""

    sort: str
    value: CursorValue
    id: uuid.UUID

    def encode(self) -> str:
        """The opaque string handed to clients."""
        raw = json.dumps([self.sort, self.value, str(self.id)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, sort: str) -> Cursor:
        """Parse ``text`` made for ordering ``sort``; raise :class:`InvalidInputError` otherwise."""
        try:
            padded = text + "=" * (-len(text) % 4)
            parsed = json.loads(base64.urlsafe_b64decode(padded.encode()))
            kind, value, row_id = parsed
            if not isinstance(kind, str) or not isinstance(value, str | int | float | bool | None):
                raise ValueError(text)
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(text)
            cursor = cls(kind, value, uuid.UUID(str(row_id)))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInputError("malformed cursor") from exc
        if cursor.sort != sort:
            raise InvalidInputError(f"cursor was made for ordering {cursor.sort!r}, not {sort!r}")
        return cursor


def cursor_value(value: object) -> CursorValue:
    """A sort value as it travels inside a cursor (datetimes as ISO strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def page_size(first: int | None, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """Validate a requested page size."""
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise InvalidInputError(f"page size must be between 0 and {maximum}, got {first}")
    return first


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows with each row's cursor, whether more follow, and the total matching the filter."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        """The cursor of the last row, to pass as ``after`` for the next page."""
        return self.cursors[-1] if self.cursors else None

    @property
    def start_cursor(self) -> str | None:
        """The cursor of the first row."""
        return self.cursors[0] if self.cursors else None
