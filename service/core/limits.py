"""Input limits and edge validation shared by every adapter (REST, GraphQL, the compiled GraphQL path).

One set of numbers, one set of checks: a page size, a history length, a search text, an id, a cursor value, a
time or a float arriving at any edge is checked here, before it reaches a query. A value outside its range is an
:class:`~service.core.errors.InvalidParameterError` naming the parameter (and the valid values, when they are few),
which REST answers as a 400 problem and GraphQL as a ``BAD_USER_INPUT`` error: never a database error, a 500 or an
``INTERNAL_SERVER_ERROR``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import Field

from service.core.errors import InvalidParameterError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
"""Rows per page of every list (``limit`` in REST, ``first`` in GraphQL): 0 (counts only) to this."""
DEFAULT_HISTORY = 20
MAX_HISTORY = 200
"""History rows per inverter (``limit`` of REST's history, ``history(limit:)`` in GraphQL): 0 to this."""
MAX_SEARCH_LENGTH = 200
"""Characters of a search text (``q`` in REST, ``search`` in GraphQL filters)."""
MAX_NESTED_LIST = 100
"""Rows a nested relation list of GraphQL returns at most (``children``, ``sites``, ... take ``first:`` up to
:data:`MAX_PAGE_SIZE`); the cost estimate counts these, so it bounds what an operation can really return."""
MAX_UPSTREAM_ID = 2**53
"""Upstream ids (accounts, sites) are positive and fit a JSON number exactly."""
UpstreamId = Annotated[int, Field(ge=1, le=MAX_UPSTREAM_ID)]
"""An upstream id in a request body (a field of a service's input model): what :func:`upstream_id` accepts."""
MAX_OFFLINE_HOURS = 24 * 365 * 50
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

MAX_GRAPHQL_BODY_BYTES = 256 * 1024
"""Largest ``/graphql`` request body: the bundled operations are under 2 KB; a hand-written dashboard query with
fragments rarely passes 20 KB."""
MAX_GRAPHQL_TOKENS = 5_000
"""Lexer tokens of one GraphQL document (the bundled operations need under 300): the parser stops there, so a
huge document costs milliseconds, not seconds of event-loop time."""
CACHED_DOCUMENT_BYTES = 16 * 1024
"""Only documents up to this size are kept in the parse/validation caches (big ones are parsed each time and
then freed, so they never pin memory)."""
MAX_BODY_WAIT_SECONDS = 10.0
"""Longest wait for the next chunk of a request body (a stalled upload or a lying Content-Length is answered
408 after this)."""

E = TypeVar("E", bound=enum.Enum)
Day = TypeVar("Day", date, datetime)


def page_size(value: int | None, *, parameter: str = "limit") -> int:
    """A page size: ``None`` is the default; 0 to :data:`MAX_PAGE_SIZE`."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    return int_in(value, 0, MAX_PAGE_SIZE, parameter=parameter)


def history_limit(value: int | None, *, parameter: str = "limit") -> int:
    """How many history rows: ``None`` is the default; 0 to :data:`MAX_HISTORY`."""
    if value is None:
        return DEFAULT_HISTORY
    return int_in(value, 0, MAX_HISTORY, parameter=parameter)


def nested_list_size(value: int | None, *, parameter: str = "first") -> int:
    """How many rows of a nested relation list: ``None`` is :data:`MAX_NESTED_LIST`; 0 to :data:`MAX_PAGE_SIZE`."""
    if value is None:
        return MAX_NESTED_LIST
    return int_in(value, 0, MAX_PAGE_SIZE, parameter=parameter)


def int_in(value: int, low: int, high: int, *, parameter: str) -> int:
    """``value`` if it is an integer from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise out_of_range(repr(value), low, high, parameter=parameter)
    return value


def out_of_range(sent: str, low: int, high: int, *, parameter: str) -> InvalidParameterError:
    """The error :func:`int_in` refuses a value with, ``sent`` as the caller wrote it (REST also words Litestar's
    refusal of a bounded integer parameter with it)."""
    return InvalidParameterError(f"{parameter} must be an integer from {low} to {high}, got {sent}",
                                 parameter=parameter)


def int_of_width(value: Any, bounds: tuple[int, int], *, parameter: str) -> int:
    """``value`` if it is an integer that fits a column of ``bounds`` (:data:`INT32`, :data:`INT64`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise InvalidParameterError(f"malformed {parameter}", parameter=parameter)
    return value


def upstream_id(value: str | int, *, parameter: str) -> int:
    """An upstream id given as text (a path segment) or a number: 1 to :data:`MAX_UPSTREAM_ID`."""
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 16:
            raise InvalidParameterError(f"{parameter} must be a positive integer, got {value[:40]!r}",
                                        parameter=parameter)
        value = int(value)
    return int_in(value, 1, MAX_UPSTREAM_ID, parameter=parameter)


def optional_upstream_id(value: int | None, *, parameter: str) -> int | None:
    """:func:`upstream_id` of an optional argument or filter field (``None``: not given)."""
    return None if value is None else upstream_id(value, parameter=parameter)


def search_text(value: str | None, *, parameter: str = "q") -> str | None:
    """A search text: at most :data:`MAX_SEARCH_LENGTH` characters of storable text."""
    if value is None:
        return None
    text(value, parameter=parameter)
    if len(value) > MAX_SEARCH_LENGTH:
        raise InvalidParameterError(f"{parameter} is limited to {MAX_SEARCH_LENGTH} characters, got {len(value)}",
                                    parameter=parameter)
    return value


def text(value: str, *, parameter: str) -> str:
    """``value`` if it is text PostgreSQL can hold: valid Unicode (no lone surrogates such as ``\\ud800``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameterError(f"{parameter} is not valid Unicode text (it holds a lone surrogate)",
                                    parameter=parameter) from None
    return value


def hours(value: float | None, *, parameter: str) -> float | None:
    """A finite number of hours from 0 to :data:`MAX_OFFLINE_HOURS`."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_OFFLINE_HOURS:
        raise InvalidParameterError(
            f"{parameter} must be a number of hours from 0 to {MAX_OFFLINE_HOURS}, got {value!r}", parameter=parameter)
    return value


def zoned_moment(value: datetime, *, parameter: str) -> datetime:
    """:func:`moment` of a time that must say its zone (a filter's bound: a naive time is refused, not guessed)."""
    if value.tzinfo is None:
        raise InvalidParameterError(f"{parameter} must carry a timezone (e.g. 2026-06-01T12:00:00Z), got "
                                    f"{value.isoformat()!r}", parameter=parameter)
    return moment(value, parameter=parameter)


def moment(value: datetime, *, parameter: str) -> datetime:
    """A time with a zone (UTC if naive) that has a UTC equivalent (``9999-12-31T23:59:59-14:00`` has none)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        aware.astimezone(UTC)
    except OverflowError:
        raise InvalidParameterError(f"{parameter} is out of range: {value.isoformat()}", parameter=parameter) from None
    return aware


def period(start: Day | None, end: Day | None, *, parameter: str = "end", start_parameter: str = "start") -> None:
    """Refuse a period that ends before it starts (``end`` may equal ``start``; an open end is never refused);
    the error names the end (``parameter``) and the start by the caller's names for them.

    Checked before a read is passed to GivEnergy, which answers an inverted range with a bare validation error.
    """
    if start is not None and end is not None and end < start:
        raise InvalidParameterError(f"{parameter} ({end.isoformat()}) is before {start_parameter} "
                                    f"({start.isoformat()}); a range must not end before it starts",
                                    parameter=parameter)


def choice(value: str | E, options: type[E], *, parameter: str) -> E:
    """A member of ``options`` by value or name, case-insensitively; the error lists the valid values."""
    if isinstance(value, options):
        return value
    wanted = str(value).strip().lower()
    for member in options:
        if wanted in (str(member.value).lower(), member.name.lower()):
            return member
    raise not_one_of(str(value), [str(member.value) for member in options], parameter=parameter)


def not_one_of(value: str, allowed: list[str], *, parameter: str) -> InvalidParameterError:
    """The error refusing ``value`` of ``parameter``, which takes one of ``allowed`` (listed in the error)."""
    return InvalidParameterError(f"{parameter} must be one of {', '.join(allowed)}; got {value[:40]!r}",
                                 parameter=parameter, allowed=allowed)


def walk_text(value: Any, *, parameter: str) -> None:
    """Check every string in a JSON value (GraphQL variables) with :func:`text`."""
    if isinstance(value, str):
        text(value, parameter=parameter)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            text(str(key), parameter=parameter)
            walk_text(item, parameter=f"{parameter}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            walk_text(item, parameter=f"{parameter}[{index}]")
