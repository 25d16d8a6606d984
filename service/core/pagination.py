"""Opaque keyset cursors shared by the REST and GraphQL adapters.

A cursor encodes the sort key of the last row a client saw (the sort column's value and the row id, which
breaks ties), so the next page is ``WHERE (sort, id) > (value, id)``: stable under concurrent inserts and as
fast on page 1,000 as on page 1. Cursors are opaque to clients (URL-safe base64 of JSON); a malformed or
tampered cursor is an :class:`~service.core.errors.InvalidParameterError` (400), never a server error. Page sizes
and every other limit live in :mod:`service.core.limits`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from service.core import limits
from service.core.errors import InvalidParameterError

T = TypeVar("T")

MAX_CURSOR_LENGTH = 1024
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
        """Parse ``text`` made for ordering ``sort``; raise :class:`InvalidParameterError` otherwise."""
        try:
            if len(text) > MAX_CURSOR_LENGTH:
                raise ValueError(text)
            padded = text + "=" * (-len(text) % 4)
            parsed = json.loads(base64.urlsafe_b64decode(padded.encode()))
            kind, value, row_id = parsed
            if not isinstance(kind, str) or not isinstance(value, str | int | float | bool | None):
                raise ValueError(text)
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(text)
            if isinstance(value, str):
                limits.text(value, parameter="cursor")
            cursor = cls(kind, value, uuid.UUID(str(row_id)))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidParameterError("malformed cursor", parameter="cursor") from exc
        if cursor.sort != sort:
            raise InvalidParameterError(f"cursor was made for ordering {cursor.sort!r}, not {sort!r}",
                                        parameter="cursor")
        return cursor


def cursor_value(value: object) -> CursorValue:
    """A sort value as it travels inside a cursor (datetimes as ISO strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


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
