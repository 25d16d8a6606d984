"""SQL expressions that render one value as the exact JSON text the resolver path sends.

The resolver path serialises with msgspec (compact: no spaces, UTF-8 as is); PostgreSQL's ``to_json`` agrees on
strings, integers and booleans, but not on floats (``100`` for ``100.0``, ``1e+16`` for ``1e16``), datetimes
(``isoformat()`` always prints six fractional digits or none) or cursors (``json.dumps`` escapes non-ASCII). Each
construct here compiles to a template around its argument (the argument's SQL may appear several times, so it
is always a plain column or a short expression).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class _Template(FunctionElement[str]):
    """A text expression rendered from ``template``: ``{0}``, ``{1}``... stand for the compiled arguments."""

    type = String()
    inherit_cache = True
    template = "{0}"


_PLACEHOLDER = re.compile(r"\{(\d+)\}")


@compiles(_Template)
def _render(element: _Template, compiler: SQLCompiler, **kw: Any) -> str:
    arguments = [compiler.process(argument, **kw) for argument in element.clauses.clauses]
    # One pass (an argument's own SQL is never searched for placeholders); not str.format: SQL has braces.
    return _PLACEHOLDER.sub(lambda match: arguments[int(match.group(1))], element.template)


class TextJson(_Template):
    """A text column as a JSON string (or ``null``)."""

    inherit_cache = True
    template = "coalesce(to_json({0})::text, 'null')"


class NumberJson(_Template):
    """An integer or boolean column as JSON (or ``null``)."""

    inherit_cache = True
    template = "coalesce(({0})::text, 'null')"


class TextArrayJson(_Template):
    """A text array as a JSON array of strings (``[]`` for null)."""

    inherit_cache = True
    template = "coalesce(array_to_json({0})::text, '[]')"


class FloatJson(_Template):
    """A double as msgspec writes it: shortest digits, ``.0`` on integral values, fixed notation from 1e-5 to
    below 1e16 and ``1e16``/``1.5e-7`` style outside; NaN and infinities as ``null``.

    PostgreSQL's output has the same shortest digits but switches to exponents below 1e-4 and from 1e15 on
    (``1.5e-05``, ``1e+15``): the rare exponent case is rewritten in a sub-select."""

    inherit_cache = True
    template = (
        "CASE WHEN {0} IS NULL THEN 'null' "
        "WHEN ({0})::text !~ '[.eNI]' THEN ({0})::text || '.0' "
        "WHEN ({0})::text !~ '[eNI]' THEN ({0})::text "
        "ELSE (SELECT CASE WHEN f.t ~ '[NI]' THEN 'null' "
        "WHEN f.e = -5 THEN f.s || '0.0000' || f.d "
        "WHEN f.e = 15 AND length(f.d) <= 16 THEN f.s || rpad(f.d, 16, '0') || '.0' "
        "WHEN f.e = 15 THEN f.s || left(f.d, 16) || '.' || substr(f.d, 17) "
        "ELSE split_part(f.t, 'e', 1) || 'e' || f.e::text END "
        "FROM (SELECT g.t, CASE WHEN g.t ~ 'e' THEN split_part(g.t, 'e', 2)::int END AS e, "
        "CASE WHEN g.t LIKE '-%' THEN '-' ELSE '' END AS s, "
        "replace(ltrim(split_part(g.t, 'e', 1), '-'), '.', '') AS d "
        "FROM (SELECT ({0})::text AS t) AS g) AS f) END"
    )


_ISO_SECONDS = "to_char(({0}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
_ISO_FRACTION = "CASE WHEN date_trunc('second', {0}) = {0} THEN '' ELSE to_char(({0}) AT TIME ZONE 'UTC', '.US') END"
ISO_DATETIME = f"{_ISO_SECONDS} || {_ISO_FRACTION} || '+00:00'"


class DatetimeJson(_Template):
    """A timestamptz as ``datetime.isoformat()`` of the UTC value (what asyncpg hands the resolvers)."""

    inherit_cache = True
    template = f"CASE WHEN {{0}} IS NULL THEN 'null' ELSE '\"' || {ISO_DATETIME} || '\"' END"


class DateJson(_Template):
    """A date as ``date.isoformat()``."""

    inherit_cache = True
    template = "CASE WHEN {0} IS NULL THEN 'null' ELSE '\"' || to_char({0}, 'YYYY-MM-DD') || '\"' END"


_BASE64URL = "rtrim(translate(encode(convert_to({text}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"


class GlobalIdJson(_Template):
    """``to_global_id(type, id)`` as a JSON string: URL-safe base64 of ``Type:uuid`` without padding
    (``{0}`` is the SQL string literal ``'Type:'``)."""

    inherit_cache = True
    template = "'\"' || " + _BASE64URL.replace("{text}", "{0} || ({1})::text") + " || '\"'"


class AsciiJson(_Template):
    """A text as ``json.dumps`` writes it (``ensure_ascii``: DEL and non-ASCII as ``\\uXXXX``, surrogate pairs
    beyond the BMP); the per-character rewrite runs only for texts that hold such characters."""

    inherit_cache = True
    template = (
        "CASE WHEN {0} ~ '[^\\x01-\\x7e]' THEN (SELECT string_agg(CASE WHEN ascii(ch.c) < 127 THEN ch.c "
        "WHEN ascii(ch.c) < 65536 THEN '\\u' || lpad(to_hex(ascii(ch.c)), 4, '0') "
        "ELSE '\\u' || to_hex(55296 + ((ascii(ch.c) - 65536) >> 10)) "
        "|| '\\u' || to_hex(56320 + ((ascii(ch.c) - 65536) & 1023)) END, '' ORDER BY ch.n) "
        "FROM unnest(string_to_array(to_json({0})::text, NULL)) WITH ORDINALITY AS ch(c, n)) "
        "ELSE to_json({0})::text END"
    )


class IsoJson(_Template):
    """A non-null timestamptz as the JSON string of its ``isoformat()`` (a cursor's sort value)."""

    inherit_cache = True
    template = f"'\"' || {ISO_DATETIME} || '\"'"


class CursorJson(_Template):
    """``Cursor(kind, value, id).encode()`` as a JSON string: ``{0}`` is the SQL literal ``'["kind",'``, ``{1}``
    the sort value already as ``json.dumps`` text, ``{2}`` the row id."""

    inherit_cache = True
    template = "'\"' || " + _BASE64URL.replace("{text}", "{0} || {1} || ',\"' || ({2})::text || '\"]'") + " || '\"'"


class ArrayJoined(_Template):
    """The texts an ``ARRAY(sub-select)`` collects, joined by commas (empty for no rows); ``{0}`` is the
    parenthesised sub-select."""

    inherit_cache = True
    template = "array_to_string(ARRAY{0}, ',')"


def sql_text(value: str) -> ColumnElement[str]:
    """A text as an SQL string literal, quotes doubled. Response keys (aliases) reach it, so it does see user
    input: GraphQL names are ``[_A-Za-z0-9]`` only, and doubling the quotes keeps any text inside the literal."""
    return literal_column("'" + value.replace("'", "''") + "'", String())


def joined(*parts: ColumnElement[Any]) -> ColumnElement[str]:
    """The concatenation of texts (``||``: a null part makes the whole null, so every part is null-free)."""
    result = parts[0]
    for part in parts[1:]:
        result = result.op("||", return_type=String())(part)
    return result
