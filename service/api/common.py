"""What several REST controllers share (controllers never import each other): page views and parameters, the
caller's read scope, the check that a serial is in it, and the naming of handlers made by a factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, Self, TypeVar

from litestar.params import Parameter
from pydantic import BaseModel, Field

from service.core import limits
from service.core.errors import NotFoundError
from service.core.pagination import Page
from service.core.principal import Principal
from service.mirror import queries as reads

T = TypeVar("T")
Fn = TypeVar("Fn", bound=Callable[..., Any])

Limit = Annotated[int, Parameter(ge=0, le=limits.MAX_PAGE_SIZE, description=(
    f"Page size (0 to {limits.MAX_PAGE_SIZE}; 0 answers the total only)."))]
Cursor = Annotated[str | None, Parameter(description="`next_cursor` of the previous page.")]
Upstream = Annotated[int | None, Parameter(ge=1, le=limits.MAX_UPSTREAM_ID, description="An upstream id.")]
"""An optional query parameter naming an account or site by its upstream id."""
SerialPath = Annotated[str, Parameter(min_length=1, max_length=64, description="A serial number.")]


class PageView(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    total_count: int = Field(description="Rows matching the filter, over all pages.")

    @classmethod
    def of(cls, page: Page[Any], view: Callable[[Any], T]) -> Self:
        """The REST page of a query's ``page``, each row shown through ``view``."""
        return cls(items=[view(row) for row in page.items],
                   next_cursor=page.end_cursor if page.has_next_page else None, total_count=page.total_count)


def scope_of(principal: Principal) -> reads.ReadScope:
    """What the caller may read: its tenant, and its subtree when the key is restricted."""
    return reads.ReadScope.of(principal.tenant_id, principal.restricted_account_id)


async def require_inverter(reader: reads.FleetReader, serial: str) -> None:
    """Raise :class:`NotFoundError` unless ``serial`` is an inverter in the reader's scope (removed ones count)."""
    if await reader.inverter_by_serial(serial) is None:
        raise NotFoundError(f"no inverter {serial!r}")


def named_handler(fn: Fn, name: str, doc: str) -> Fn:
    """``fn`` named ``name`` and documented by ``doc``, as if written out under that name.

    Litestar derives a handler's OpenAPI summary and operation id from its function's name, so a handler made by a
    factory must carry the name it would have had as a method of its controller.
    """
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn
