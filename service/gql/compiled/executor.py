"""Answering a query operation with one SQL statement per root field, the JSON built by PostgreSQL.

:func:`answer` returns the response body, or ``None`` when the resolver path must answer the whole operation:
a document that does not parse or validate, a mutation, an operation over a limit, variables that do not coerce,
an argument an edge check refuses, a lookup that finds nothing. In all those cases the resolvers produce the
error, so error shapes cannot drift. Root fields the compiler does not render (live data, ``fleetSummary``,
campaigns, alerts, ``products``...) run through graphql-core on the same document, and the body is assembled in
the order of the operation's root fields.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import msgspec
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    specified_rules,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import is_awaitable
from sqlalchemy import Select
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import validate_document

from service.core.errors import GivfleetError
from service.core.limits import CACHED_DOCUMENT_BYTES, MAX_GRAPHQL_TOKENS
from service.gql.compiled.builder import CONNECTIONS, LOOKUPS, Builder, NotCompilable
from service.gql.context import Context
from service.gql.errors import presented
from service.gql.limits import MAX_COST, cached_parse, limit_rules, operation_cost
from service.gql.schema import GivfleetSchema, schema
from service.gql.types.common import from_global_id

_RULES = (*specified_rules, *limit_rules())
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Prepared:
    """A parsed, validated query operation and the document's fragments."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]


@functools.lru_cache(maxsize=512)
def prepare(query: str, operation_name: str | None) -> Prepared | None:
    """The query operation ``operation_name`` of ``query``, parsed and validated with the resolver path's rules
    (token, depth and alias limits included); ``None`` when the resolver path must answer (it reports the
    errors)."""
    try:
        document = cached_parse(query, max_tokens=MAX_GRAPHQL_TOKENS)
    except GraphQLError:
        return None
    if validate_document(schema._schema, document, _RULES):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return Prepared(document, operations[0], fragments)


def result_body_of(response: object) -> bytes:
    """A response (``{"data", "errors", "extensions"}``) as the ``/graphql`` controller sends it: compact JSON,
    UTF-8 as is, the same bytes as the compiled path writes."""
    return _ENCODER.encode(response)


def result_body(result: ExecutionResult) -> bytes:
    """The response body of an executed operation (strawberry's shape of it)."""
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        body["extensions"] = result.extensions
    return result_body_of(body)


async def answer(context: Context, query: Any, variables: Any, operation_name: Any, *,
                 on: GivfleetSchema = schema) -> bytes | None:
    """The body answering the operation, or ``None`` to leave it all to the resolver path."""
    if not isinstance(query, str) or len(query) > CACHED_DOCUMENT_BYTES or not isinstance(variables, dict | None) \
            or not isinstance(operation_name, str | None):
        return None
    prepared = prepare(query, operation_name)
    if prepared is None:
        return None
    coerced = get_variable_values(on._schema, prepared.operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list) or operation_cost(prepared.document, operation_name, variables) > MAX_COST:
        return None
    builder = Builder(on._schema, prepared.fragments, coerced, context.scope, context.now)
    query_type = on._schema.query_type
    assert query_type is not None
    try:
        root_fields = builder.collect(query_type, [prepared.operation.selection_set])
        statements = {key: _root_statement(builder, query_type, nodes) for key, nodes in root_fields.items()}
    except (GivfleetError, NotCompilable):
        return None  # a refused argument, a directive the compiler does not know: the resolvers answer
    if all(statement is None for statement in statements.values()):
        return None
    texts: dict[str, str] = {}
    async with context.session_factory() as session:
        for key, statement in statements.items():
            if isinstance(statement, str):
                texts[key] = statement
            elif statement is not None:
                text = (await session.execute(statement)).scalar_one_or_none()
                if text is None:
                    return None  # not found: the resolvers report it, with their message and path
                texts[key] = text
    resolved = [key for key, statement in statements.items() if statement is None]
    if resolved:
        result = await _resolve(on, prepared, root_fields, resolved, variables, context)
        if result.errors:
            result.errors = [presented(error, context.request_id) for error in result.errors]
        if result.data is None:
            return result_body(result)
        for key in resolved:
            texts[key] = _ENCODER.encode(result.data[key]).decode()
        errors = b',"errors":' + _ENCODER.encode([error.formatted for error in result.errors]) if result.errors \
            else b""
    else:
        errors = b""
    data = ",".join(f'"{key}":{texts[key]}' for key in root_fields)
    return b'{"data":{' + data.encode() + b"}" + errors + b"}"


def _root_statement(builder: Builder, query_type: GraphQLObjectType, nodes: list[FieldNode]
                    ) -> Select[tuple[str]] | str | None:
    """The statement of one root field, a constant, or ``None`` for a field the resolvers answer."""
    name = nodes[0].name.value
    if name == "__typename":
        return f'"{query_type.name}"'
    definition = query_type.fields[name]
    try:
        if name in CONNECTIONS:
            return builder.connection(name, definition, nodes)
        if name in LOOKUPS:
            type_name, column, argument = LOOKUPS[name]
            value = builder.arguments(definition, nodes[0])[argument]
            if isinstance(value, str):
                value = value.strip()
                if "\x00" in value:
                    raise NotCompilable("a key PostgreSQL cannot store")  # not found, as the resolvers say
            return builder.lookup(type_name, column, value, nodes)
        if name == "node":
            type_name, row_id = from_global_id(builder.arguments(definition, nodes[0])["id"])
            return builder.lookup(type_name, "id", row_id, nodes)
    except NotCompilable:
        return None
    return None


async def _resolve(on: GivfleetSchema, prepared: Prepared, root_fields: dict[str, list[FieldNode]],
                   keys: list[str], variables: dict[str, Any] | None,
                   context: Context) -> ExecutionResult:
    """Execute the root fields ``keys`` through the resolvers (the same field nodes, so error locations and
    paths are those of the whole document)."""
    selections = tuple(node for key in keys for node in root_fields[key])
    operation = OperationDefinitionNode(
        operation=prepared.operation.operation, name=prepared.operation.name,
        variable_definitions=prepared.operation.variable_definitions, directives=(),
        selection_set=SelectionSetNode(selections=selections), loc=prepared.operation.loc)
    document = DocumentNode(definitions=(operation, *prepared.fragments.values()), loc=prepared.document.loc)
    result = execute(on._schema, document, context_value=context, variable_values=variables or {},
                     operation_name=operation.name.value if operation.name else None,
                     **execution_context_class_kwargs(on.execution_context_class))
    if is_awaitable(result):
        result = await result
    assert isinstance(result, ExecutionResult)
    return result
