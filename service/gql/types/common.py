"""Shapes shared by every domain: the Relay ``Node`` interface and global ids, ``PageInfo``."""

from __future__ import annotations

import base64
import binascii
import inspect
import typing
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from pydantic.fields import FieldInfo

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

    ``read_model`` is a read model (one of :mod:`service.mirror.read_model`, or
    :class:`service.monitoring.settings.MonitoringKnobs`), which the class also inherits (so that type checkers see
    its fields). Put it below ``@strawberry.type``. A field the read model describes (``Annotated[int,
    Field(description=...)]``, which the REST view shows too) has that description. A field the class declares
    again (to add a description, or to use it in a resolver) keeps its place; the class's other fields follow.
    """

    def add(cls: C) -> C:
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        inherited = {name: own.pop(name, annotation) for name, annotation in field_types(read_model).items()}
        for name, description in _descriptions(read_model).items():
            if name not in vars(cls):
                setattr(cls, name, strawberry.field(description=description))
        cls.__annotations__ = {**inherited, **own}
        return cls

    return add


def optional_fields(read_model: type[object]) -> Callable[[C], C]:
    """Give the decorated class (to be a strawberry input) the plain fields of ``read_model``, in its order, each
    optional (default null) and described as :func:`read_fields` describes it, followed by the class's own fields.
    The class does not inherit ``read_model`` (its fields may be null): read them by name. Put it below
    ``@strawberry.input``."""

    def add(cls: C) -> C:
        own: dict[str, Any] = dict(inspect.get_annotations(cls))
        optional = {name: annotation | None for name, annotation in field_types(read_model).items()
                    if name not in own}
        descriptions = _descriptions(read_model)
        for name in optional:
            setattr(cls, name, strawberry.field(default=None, description=descriptions.get(name)))
        cls.__annotations__ = {**optional, **own}
        return cls

    return add


def _descriptions(read_model: type[object]) -> dict[str, str]:
    """The description of each field of ``read_model`` that has one (in a pydantic ``Field`` of its annotation)."""
    return {name: info.description
            for name, annotation in typing.get_type_hints(read_model, include_extras=True).items()
            for info in getattr(annotation, "__metadata__", ()) if isinstance(info, FieldInfo) and info.description}


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id.")


@strawberry.type(description="Where a page of a connection sits.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="Whether rows precede `startCursor` (after: was given).")
    start_cursor: str | None = strawberry.field(description="Cursor of the first row of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row; pass as `after:`.")
