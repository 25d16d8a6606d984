"""Shapes shared by every domain: the Relay ``Node`` interface and global ids, ``PageInfo``."""

from __future__ import annotations

import base64
import binascii
import inspect
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry

from service.core.errors import NotFoundError
from service.mirror.read_model import field_types

C = TypeVar("C", bound=type)


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


def read_fields(read_model: type[object]) -> Callable[[C], C]:
    """Give the decorated class (to be a strawberry type) the plain fields of ``read_model``, in its order.

    ``read_model`` is one of :mod:`service.mirror.read_model`, which the class also inherits (so that type checkers
    see its fields). Put it below ``@strawberry.type``. A field the class declares again (to add a description, or
    to use it in a resolver) keeps its place; the class's other fields follow.
    """

    def add(cls: C) -> C:
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        inherited = {name: own.pop(name, annotation) for name, annotation in field_types(read_model).items()}
        cls.__annotations__ = {**inherited, **own}
        return cls

    return add


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id.")


@strawberry.type(description="Where a page of a connection sits.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="Whether rows precede `startCursor` (after: was given).")
    start_cursor: str | None = strawberry.field(description="Cursor of the first row of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row; pass as `after:`.")
