"""From a root field's selection to one SQL statement that returns the field's JSON text.

Each GraphQL object becomes a text expression concatenating its keys (in the order graphql-core would complete
them) and values; a to-one relation is a correlated scalar sub-select, a list is ``ARRAY(sub-select)`` joined by
commas; a connection's rows come from one ``page`` CTE (the keyset window, one row more than asked to learn
``hasNextPage``). Filters, sorts, cursors and scoping are the read side's own (:mod:`service.mirror.queries`), so
the rows are exactly those the resolvers read. What this module does not know raises :class:`NotCompilable`, and
the executor hands the field to the resolvers instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values
from sqlalchemy import BigInteger, DateTime, FromClause, Integer, Select, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from service.core.limits import MAX_HISTORY, history_limit, nested_list_size, page_size
from service.db.models import mirror as m
from service.gql.compiled import json_sql as js
from service.gql.mirror import filters as gql_filters
from service.mirror.queries import (
    MODELS,
    AccountSort,
    DongleSort,
    InverterSort,
    PageWindow,
    ReadScope,
    SiteSort,
    SortKey,
    present_first,
)


class NotCompilable(Exception):  # noqa: N818 (a signal, not a failure)
    """The selection holds something only the resolvers serve (live data, JSON scalars, an unknown field)."""


# Object types the compiler renders (SyncRun needs a policy check: the resolvers keep it).
COMPILED_TYPES: dict[str, type[Any]] = {name: model for name, model in MODELS.items() if model is not m.SyncRun}
# Fields whose column is not the snake_case of their name.
_COLUMNS = {("Site", "siteStatus"): "scheme_status", ("Site", "siteStatusCheckedAt"): "scheme_status_checked_at"}


@dataclass(frozen=True)
class Relation:
    """A relation field: rows of ``model`` whose ``remote`` column equals the parent's ``local`` column.

    ``kind``: ``one`` (any row, removed or not), ``capped`` (present rows, at most ``first:``), ``all`` (present
    rows) or ``history`` (the newest ``limit:`` changes). ``order``: (column, descending) pairs, then the id.
    ``ambiguous``: a to-one relation several rows may match, answered by :func:`present_first` (as its loader).
    """

    model: type[Any]
    local: str
    remote: str
    kind: str
    order: tuple[tuple[str, bool], ...] = ()
    ambiguous: bool = False


_ACCOUNT = m.FleetAccount
RELATIONS: dict[tuple[str, str], Relation] = {
    ("Account", "parent"): Relation(_ACCOUNT, "parent_upstream_id", "upstream_id", "one"),
    ("Account", "children"): Relation(_ACCOUNT, "upstream_id", "parent_upstream_id", "capped", (("username", False),)),
    ("Account", "sites"): Relation(m.Site, "upstream_id", "account_upstream_id", "capped", (("upstream_id", False),)),
    ("Account", "dongles"): Relation(m.Dongle, "upstream_id", "account_upstream_id", "capped", (("serial", False),)),
    ("Account", "inverters"): Relation(m.Inverter, "upstream_id", "account_upstream_id", "capped",
                                       (("serial", False),)),
    ("Site", "account"): Relation(_ACCOUNT, "account_upstream_id", "upstream_id", "one"),
    ("Site", "dongles"): Relation(m.Dongle, "upstream_id", "site_upstream_id", "capped", (("serial", False),)),
    ("Site", "inverters"): Relation(m.Inverter, "upstream_id", "site_upstream_id", "capped", (("serial", False),)),
    ("Dongle", "account"): Relation(_ACCOUNT, "account_upstream_id", "upstream_id", "one"),
    ("Dongle", "site"): Relation(m.Site, "site_upstream_id", "upstream_id", "one"),
    ("Dongle", "inverter"): Relation(m.Inverter, "serial", "dongle_serial", "one", ambiguous=True),
    ("Inverter", "dongle"): Relation(m.Dongle, "dongle_serial", "serial", "one"),
    ("Inverter", "account"): Relation(_ACCOUNT, "account_upstream_id", "upstream_id", "one"),
    ("Inverter", "site"): Relation(m.Site, "site_upstream_id", "upstream_id", "one"),
    ("Inverter", "batteries"): Relation(m.BatteryModule, "serial", "inverter_serial", "all", (("position", False),)),
    ("Inverter", "meters"): Relation(m.Meter, "serial", "inverter_serial", "all", (("address", False),)),
    ("Inverter", "history"): Relation(m.InverterChange, "serial", "inverter_serial", "history",
                                      (("observed_at", True),)),
    ("BatteryModule", "inverter"): Relation(m.Inverter, "inverter_serial", "serial", "one"),
    ("Meter", "inverter"): Relation(m.Inverter, "inverter_serial", "serial", "one"),
}


@dataclass(frozen=True)
class Connection:
    """A root connection field: its model, its ordering when the field takes no ``sort``, and how its GraphQL
    filter becomes SQL conditions."""

    model: type[Any]
    default_sort: SortKey
    filter_type: Callable[..., Any]
    conditions: Callable[[Any, ReadScope, datetime], list[ColumnElement[bool]]]


CONNECTIONS: dict[str, Connection] = {
    "inverters": Connection(m.Inverter, InverterSort.SERIAL, gql_filters.InverterFilter,
                            lambda f, scope, now: f.to_query().conditions(scope, now)),
    "accounts": Connection(m.FleetAccount, AccountSort.USERNAME, gql_filters.AccountFilter,
                           lambda f, scope, _now: f.to_query().conditions(scope)),
    "sites": Connection(m.Site, SiteSort.NAME, gql_filters.SiteFilter,
                        lambda f, scope, _now: f.to_query().conditions(scope)),
    "dongles": Connection(m.Dongle, DongleSort.SERIAL, gql_filters.DongleFilter,
                          lambda f, scope, _now: f.to_query().conditions(scope)),
}
# Root lookups by key: the type, its key column and the argument naming it.
LOOKUPS: dict[str, tuple[str, str, str]] = {
    "inverter": ("Inverter", "serial", "serial"), "account": ("Account", "upstream_id", "upstreamId"),
    "site": ("Site", "upstream_id", "upstreamId"),
}
Fields = dict[str, list[FieldNode]]
LOOKUP_KEY = "lookup_key"
MAX_COMPILED_NODES = 300
"""At most how many field nodes one operation's statements may render, fragments expanded: fragments that
re-enter a type through its relations (``dongle { inverter }``, ``site { inverters }``) multiply within the cost
limit, and compiling such a document takes seconds and megabytes of SQL. Above it the resolvers answer."""


@dataclass
class Builder:
    """Builds the statements of one operation (its schema, fragments, variables and the caller's scope)."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: VariableValues
    scope: ReadScope
    now: datetime
    uses_now: bool = False
    """Whether a statement depends on the moment of the request (an ``offlineForHours`` filter)."""
    collected: int = 0
    """Field nodes collected so far (bounded by :data:`MAX_COMPILED_NODES`)."""

    # -- selections -------------------------------------------------------------------------------------------

    def collect(self, type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode | None]) -> Fields:
        """The fields of ``type_`` selected by ``selection_sets``, by response key, in first-seen order (as
        graphql-core's field collection: fragments expanded, ``@skip``/``@include`` applied)."""
        fields: Fields = {}
        for selection_set in selection_sets:
            self._collect(type_, selection_set, fields, set())
        return fields

    def _collect(self, type_: GraphQLObjectType, selection_set: SelectionSetNode | None, fields: Fields,
                 visited: set[str]) -> None:
        for selection in selection_set.selections if selection_set else ():
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                self.collected += 1
                if self.collected > MAX_COMPILED_NODES:
                    raise NotCompilable("too many fields once fragments are expanded")
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if self._matches(condition.name.value if condition else None, type_):
                    self._collect(type_, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self._matches(fragment.type_condition.name.value, type_):
                    self._collect(type_, fragment.selection_set, fields, visited)

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            if directive.name.value not in ("skip", "include"):
                raise NotCompilable(f"directive @{directive.name.value}")
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return include is None or include.get("if") is not False

    def _matches(self, condition: str | None, type_: GraphQLObjectType) -> bool:
        if condition is None or condition == type_.name:
            return True
        abstract = self.schema.get_type(condition)
        return abstract is not None and not isinstance(abstract, GraphQLObjectType) and \
            self.schema.is_sub_type(abstract, type_)  # type: ignore[arg-type]

    def arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The field's coerced arguments (Python names are the GraphQL ones: strawberry's ``out_name``s)."""
        return get_argument_values(definition, node, self.variables)

    # -- objects ------------------------------------------------------------------------------------------------

    def object_json(self, type_: GraphQLObjectType, source: FromClause, fields: Fields) -> ColumnElement[str]:
        """The JSON text of one ``type_`` row of ``source`` with the selected ``fields``."""
        return self._rendered(type_, fields, lambda name, nodes: self._value(type_, source, name, nodes))

    def _rendered(self, type_: GraphQLObjectType, fields: Fields,
                  value: Callable[[str, list[FieldNode]], ColumnElement[str] | str]) -> ColumnElement[str]:
        """An object's JSON text: its keys in order, each with ``value(field name, field nodes)``."""
        parts: list[ColumnElement[str] | str] = []
        for index, (key, nodes) in enumerate(fields.items()):
            parts.append(("{" if index == 0 else ",") + f'"{key}":')
            name = nodes[0].name.value
            parts.append(f'"{type_.name}"' if name == "__typename" else value(name, nodes))
        parts.append("}" if fields else "{}")
        return _concat(parts)

    def _selected(self, type_: GraphQLObjectType, nodes: list[FieldNode]) -> Fields:
        return self.collect(type_, (node.selection_set for node in nodes))

    def _value(self, type_: GraphQLObjectType, source: FromClause, name: str, nodes: list[FieldNode]
               ) -> ColumnElement[str] | str:
        definition = type_.fields.get(name)
        if definition is None:
            raise NotCompilable(f"{type_.name}.{name}")
        relation = RELATIONS.get((type_.name, name))
        if relation is not None:
            return self._relation(relation, definition, source, nodes)
        return self._scalar(type_.name, name, definition, source)

    def _scalar(self, type_name: str, name: str, definition: GraphQLField, source: FromClause
                ) -> ColumnElement[str]:
        if name == "id":
            return js.GlobalIdJson(js.sql_text(f"{type_name}:"), source.c.id)
        scalar = get_named_type(definition.type).name
        if type_name == "Site" and name == "timezone":  # the site's own zone first, as Site.from_row does
            return js.TextJson(func.coalesce(func.nullif(source.c.tz_timezone, ""), source.c.timezone))
        column = source.c.get(_COLUMNS.get((type_name, name), _snake(name)))
        if column is None:
            raise NotCompilable(f"{type_name}.{name}")
        if isinstance(_unwrapped(definition.type), GraphQLList) and scalar == "String":
            return js.TextArrayJson(column)
        render = _SCALARS.get(scalar)
        if render is None:
            raise NotCompilable(f"{type_name}.{name}: {scalar}")
        return render(column)

    def _relation(self, relation: Relation, definition: GraphQLField, source: FromClause, nodes: list[FieldNode]
                  ) -> ColumnElement[str] | str:
        target = _object_type(definition.type)
        arguments = self.arguments(definition, nodes[0])
        rows = relation.model.__table__.alias()
        row_json = self.object_json(target, rows, self._selected(target, nodes))
        conditions = [*self.scope.visible(relation.model, on=rows), rows.c[relation.remote] == source.c[relation.local]]
        if relation.kind == "one":
            one = select(row_json).where(*conditions)
            if relation.ambiguous:
                one = one.order_by(*present_first(rows))
            return func.coalesce(one.limit(1).scalar_subquery(), js.sql_text("null"))
        limit: int | None = None
        if relation.kind == "capped":
            limit = nested_list_size(arguments.get("first"))
        elif relation.kind == "history":
            limit = min(history_limit(arguments["limit"]), MAX_HISTORY)
        if limit == 0:
            return "[]"
        if relation.kind != "history":
            conditions.append(rows.c.removed_at.is_(None))
        ordering = [rows.c[column].desc() if descending else rows.c[column] for column, descending in relation.order]
        ordering.append(rows.c.id.desc() if relation.kind == "history" else rows.c.id)
        listed = select(row_json).where(*conditions).order_by(*ordering).limit(limit)
        return _concat(["[", js.ArrayJoined(listed.scalar_subquery()), "]"])

    # -- root fields --------------------------------------------------------------------------------------------

    def lookup(self, type_name: str, column: str, nodes: list[FieldNode]) -> Select[Any]:
        """The JSON of the ``type_name`` row whose ``column`` is the parameter :data:`LOOKUP_KEY` (bound at
        execution, so one statement serves every key): no row when none is visible."""
        model = COMPILED_TYPES.get(type_name)
        type_ = self.schema.get_type(type_name)
        if model is None or not isinstance(type_, GraphQLObjectType):
            raise NotCompilable(type_name)
        rows = model.__table__.alias()
        fields = self._selected(type_, nodes)
        key = bindparam(LOOKUP_KEY, type_=rows.c[column].type)
        statement: Select[Any] = (select(self.object_json(type_, rows, fields))
                                         .where(*self.scope.visible(model, on=rows), rows.c[column] == key).limit(1))
        return statement

    def connection(self, name: str, definition: GraphQLField, nodes: list[FieldNode]) -> Select[Any]:
        """A page of a root connection as ``{edges, pageInfo, totalCount}`` in the order selected."""
        spec = CONNECTIONS[name]
        arguments = self.arguments(definition, nodes[0])
        given = arguments.get("filter") or {}
        criteria = spec.filter_type(**{_snake(key): value for key, value in given.items()})
        conditions = spec.conditions(criteria, self.scope, self.now)
        self.uses_now = self.uses_now or getattr(criteria, "offline_for_hours", None) is not None
        first = page_size(arguments.get("first"), parameter="first")
        after = arguments.get("after")
        sort = arguments.get("sort") or spec.default_sort
        window = PageWindow.of(spec.model, sort, arguments["direction"], after)
        table = spec.model.__table__
        page = (select(*table.c, window.key.label("sort_key"),
                       func.row_number().over(order_by=window.ordering).label("rn"))
                .where(*conditions, *window.after).order_by(*window.ordering).limit(first + 1).cte("page"))
        cursor = js.CursorJson(js.sql_text(f'["{window.cursor_kind}",'), _sort_value_json(page.c.sort_key),
                                page.c.id)
        connection_type = _object_type(definition.type)

        def value(name: str, field_nodes: list[FieldNode]) -> ColumnElement[str] | str:
            if name == "totalCount":
                return js.NumberJson(select(func.count()).select_from(table).where(*conditions).scalar_subquery())
            if name == "edges":
                edge = self._edge(_object_type(connection_type.fields["edges"].type), page, cursor, field_nodes)
                listed = select(edge).select_from(page).where(page.c.rn <= first).order_by(page.c.rn)
                return _concat(["[", js.ArrayJoined(listed.scalar_subquery()), "]"])
            return self._page_info(_object_type(connection_type.fields["pageInfo"].type), page, cursor,
                                   field_nodes, first, after)

        statement: Select[Any] = select(self._rendered(connection_type, self._selected(connection_type, nodes), value))
        return statement

    def _edge(self, edge_type: GraphQLObjectType, page: Any, cursor: ColumnElement[str], nodes: list[FieldNode]
              ) -> ColumnElement[str]:
        def value(name: str, field_nodes: list[FieldNode]) -> ColumnElement[str]:
            if name == "cursor":
                return cursor
            node_type = _object_type(edge_type.fields["node"].type)
            return self.object_json(node_type, page, self._selected(node_type, field_nodes))

        return self._rendered(edge_type, self._selected(edge_type, nodes), value)

    def _page_info(self, info_type: GraphQLObjectType, page: Any, cursor: ColumnElement[str],
                   nodes: list[FieldNode], first: int, after: str | None) -> ColumnElement[str]:
        def value(name: str, _nodes: list[FieldNode]) -> ColumnElement[str] | str:
            if name == "hasPreviousPage":
                return "true" if after is not None else "false"
            if name == "hasNextPage":
                return js.NumberJson(select(func.count()).select_from(page).scalar_subquery() > first)
            rows = select(cursor).select_from(page).where(page.c.rn <= first)
            edge = rows.order_by(page.c.rn if name == "startCursor" else page.c.rn.desc()).limit(1)
            return func.coalesce(edge.scalar_subquery(), js.sql_text("null"))

        return self._rendered(info_type, self._selected(info_type, nodes), value)


def _object_type(type_: Any) -> GraphQLObjectType:
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        raise NotCompilable(f"{named}: an abstract type")
    return named


def _sort_value_json(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A sort key as ``json.dumps(cursor_value(value))`` (cursors are ASCII JSON inside base64)."""
    if isinstance(column.type, DateTime):
        return js.IsoJson(column)
    if isinstance(column.type, Integer | BigInteger):
        return js.NumberJson(column)
    return js.AsciiJson(column)


_SCALARS: dict[str, Callable[[ColumnElement[Any]], ColumnElement[str]]] = {
    "String": js.TextJson, "Int": js.NumberJson, "Boolean": js.NumberJson, "Float": js.FloatJson,
    "DateTime": js.DatetimeJson, "Date": js.DateJson,
}


def _unwrapped(type_: Any) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _snake(name: str) -> str:
    return "".join("_" + char.lower() if char.isupper() else char for char in name)


def _concat(parts: Sequence[ColumnElement[str] | str]) -> ColumnElement[str]:
    """``parts`` joined with ``||``, adjacent constants merged into one literal."""
    merged: list[ColumnElement[str] | str] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return js.joined(*(js.sql_text(part) if isinstance(part, str) else part for part in merged))


