"""Shapes shared by every domain: the Relay ``Node`` interface and global ids, ``PageInfo``."""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry

from service.core.errors import NotFoundError


def to_global_id(type_name: str, row_id: uuid.UUID) -> strawberry.ID:
    """The opaque global id of a row (``base64("Type:uuid")``)."""
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{row_id}".encode()).decode().rstrip("="))


def from_global_id(value: str) -> tuple[str, uuid.UUID]:
    """(type name, row id) of a global id; a malformed id is simply not found."""
    try:
        decoded = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode()).decode()
        type_name, _, raw = decoded.partition(":")
        return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise NotFoundError(f"no object with id {value!r}") from exc


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id.")


@strawberry.type(description="Where a page of a connection sits.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="Whether rows precede `startCursor` (after: was given).")
    start_cursor: str | None = strawberry.field(description="Cursor of the first row of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row; pass as `after:`.")
