"""Text a user writes that is stored and shown again (names, models, serials, labels).

PostgreSQL text cannot hold NUL (asyncpg refuses it outright), and a control character in a name shown in a
terminal or a page is a trap: such text is refused at the edge as bad input, never sent to the database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from service.core.errors import InvalidInputError


def plain(text: str) -> str:
    """``text`` if it holds no control character (``\\x00``-``\\x1f``, ``\\x7f``).

    Raises:
        ValueError: It does.
    """
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in text):
        raise ValueError("must not contain control characters (tab, newline, NUL, ...)")
    return text


def plain_field(text: str, field: str, *, max_length: int | None = None) -> str:
    """:func:`plain` for a field a service checks itself (not through a pydantic model), and, given
    ``max_length``, 1 to that many characters besides surrounding spaces (the column's size: longer is bad input,
    not a database error).

    Raises:
        InvalidInputError: ``text`` holds a control character, or is empty or too long; the message and ``field``
            name the field.
    """
    if max_length is not None and not 1 <= len(text.strip()) <= max_length:
        raise InvalidInputError(f"{field} is 1 to {max_length} characters", field=field)
    try:
        return plain(text)
    except ValueError as exc:
        raise InvalidInputError(f"{field} {exc}", field=field) from None


NO_CONTROL = AfterValidator(plain)
"""Refuses control characters; put it after the length, ``Annotated[str, StringConstraints(max_length=64),
NO_CONTROL]``, so that a length error reads as one on text."""
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NO_CONTROL]
"""A user-visible name (a campaign's, a firmware watch's): 1 to 200 characters, no control characters."""
