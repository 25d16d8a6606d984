"""Relay-style connections: ``edges { cursor node }``, ``pageInfo`` and ``totalCount``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from service.core.pagination import Page
from service.gql.types.common import PageInfo

T = TypeVar("T")
R = TypeVar("R")


@strawberry.type(description="A row of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Pass as `after:` to continue after this row.")
    node: T


@strawberry.type(description="A page of rows.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Rows matching the filter, over all pages.")

    @classmethod
    def of(cls, page: Page[R], convert: Callable[[R], T], *, after: str | None) -> Connection[T]:
        """The connection of ``page``, converting each row with ``convert``."""
        return cls(
            edges=[Edge(cursor=cursor, node=convert(item)) for item, cursor in zip(page.items, page.cursors,
                                                                                   strict=True)],
            page_info=PageInfo(has_next_page=page.has_next_page, has_previous_page=after is not None,
                               start_cursor=page.start_cursor, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )
