"""Membership in a list of any length, as one parameter.

``column.in_(values)`` binds one parameter per value, and PostgreSQL's protocol (asyncpg) refuses a statement with
more than 32,767 of them: a user-sized list (a campaign's serials, a watch's stragglers, a wave) must travel as ONE
array parameter instead, ``column = ANY(:values)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute


def one_of(column: InstrumentedAttribute[Any] | ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column`` equals one of ``values``, sent as one array parameter.

    Text goes as an unsized text array: a cast to the column's ``VARCHAR(n)`` would cut a longer value down to a
    stored one.
    """
    element = String() if isinstance(column.type, String) else column.type
    return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
