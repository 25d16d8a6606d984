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
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import structlog
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
    VariableNode,
    Visitor,
    execute,
    visit,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import is_awaitable
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import SQLAlchemyError
from strawberry.schema._graphql_core import execution_context_class_kwargs

from service.core.errors import GivfleetError
from service.core.limits import CACHED_DOCUMENT_BYTES, MAX_GRAPHQL_TOKENS
from service.gql.compiled.builder import CONNECTIONS, LOOKUP_KEY, LOOKUPS, Builder, NotCompilable
from service.gql.context import Context
from service.gql.errors import presented
from service.gql.limits import MAX_COST, cached_parse, cached_validation, operation_cost
from service.gql.schema import GivfleetSchema, schema
from service.gql.types.common import from_global_id
from service.mirror.queries import ReadScope

log = structlog.get_logger(__name__)
_ENCODER = msgspec.json.Encoder()
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_QUERY: GraphQLObjectType = cast(GraphQLObjectType, schema._schema.query_type)


@dataclass(frozen=True)
class Prepared:
    """A parsed, validated query operation and the document's fragments."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    lookup_variables: frozenset[str]
    """Variables used once, as the key of a root lookup (``inverter(serial: $serial)``): bound at execution."""


@functools.lru_cache(maxsize=512)
def prepare(query: str, operation_name: str | None) -> Prepared | None:
    """The query operation ``operation_name`` of ``query``, parsed and validated with the resolver path's rules
    (token, depth and alias limits included); ``None`` when the resolver path must answer (it reports the
    errors)."""
    try:
        document = cached_parse(query, max_tokens=MAX_GRAPHQL_TOKENS)
    except GraphQLError:
        return None
    if cached_validation(schema._schema, document):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY \
            or not _may_compile(operations[0]):
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return Prepared(document, operations[0], fragments, _lookup_variables(document, operations[0]))


def _may_compile(operation: OperationDefinitionNode) -> bool:
    """Whether a root field of ``operation`` could be compiled: when none can (campaigns, alerts, fleetSummary,
    viewer, ...), the resolver path answers at once, without coercing the variables and costing it twice.
    A fragment at the root may hold any field, so it counts as compilable."""
    return any(not isinstance(selection, FieldNode) or selection.name.value in CONNECTIONS
               or selection.name.value in LOOKUPS or selection.name.value == "node"
               for selection in operation.selection_set.selections)


def _lookup_variables(document: DocumentNode, operation: OperationDefinitionNode) -> frozenset[str]:
    uses: dict[str, int] = {}

    class Uses(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            uses[node.name.value] = uses.get(node.name.value, 0) + 1

    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            visit(definition, Uses())
    visit(operation.selection_set, Uses())
    keys = set()
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode) and selection.name.value in LOOKUPS:
            for argument in selection.arguments or ():
                if argument.name.value == LOOKUPS[selection.name.value][2] and isinstance(argument.value, VariableNode):
                    keys.add(argument.value.name.value)
    return frozenset(name for name in keys if uses.get(name) == 1)


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


@dataclass(frozen=True)
class Statement:
    """A root field's SQL, compiled once: its text, the names of its positional parameters and their values
    (all but :data:`~service.gql.compiled.builder.LOOKUP_KEY`, bound at each execution)."""

    sql: str
    names: tuple[str, ...]
    values: dict[str, Any]

    def parameters(self, key: Any) -> tuple[Any, ...]:
        return tuple(key if name == LOOKUP_KEY else self.values[name] for name in self.names)


Plan = Statement | str | None
"""How a root field is answered: a statement, a constant JSON text (``__typename``), or the resolvers."""
MAX_PLAN_BYTES = 16 * 1024 * 1024
"""At most how many bytes of SQL (and of the documents keying it) the plan cache holds; the least recently used
plans go first."""


class PlanCache:
    """Compiled plans by document, operation, scope and shaping variables, bounded by the size of their SQL and
    keys (a key's texts count too: plans the resolvers answer hold no SQL, but their documents take room)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._plans: OrderedDict[tuple[Any, ...], tuple[dict[str, Plan], int]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> dict[str, Plan] | None:
        entry = self._plans.get(key)
        if entry is None:
            return None
        self._plans.move_to_end(key)
        return entry[0]

    def put(self, key: tuple[Any, ...], plans: dict[str, Plan]) -> None:
        size = sum(len(plan.sql) for plan in plans.values() if isinstance(plan, Statement)) + \
            sum(len(part) for part in key if isinstance(part, str | bytes))
        if size > self.max_bytes:
            return
        previous = self._plans.pop(key, None)
        self.bytes += size - (previous[1] if previous else 0)
        self._plans[key] = (plans, size)
        while self.bytes > self.max_bytes:
            _key, (_plans, evicted) = self._plans.popitem(last=False)
            self.bytes -= evicted

    def __len__(self) -> int:
        return len(self._plans)


_PLANS = PlanCache(MAX_PLAN_BYTES)


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
    if isinstance(coerced, list):
        return None
    builder = Builder(on._schema, prepared.fragments, coerced, context.scope, context.now)
    try:
        plan_key = _plan_key(prepared, query, operation_name, context.scope, variables)
        plans = _PLANS.get(plan_key)
        # The cost depends on the document and the shaping variables only (a lookup's key is no page size), so a
        # cached plan was costed already.
        if plans is None and operation_cost(prepared.document, operation_name, variables) > MAX_COST:
            return None
        root_fields = builder.collect(_QUERY, [prepared.operation.selection_set])
        keys = {name: _lookup_key(builder, nodes) for name, nodes in root_fields.items()}
        if plans is None:
            plans = _plans(builder, plan_key, root_fields)
    except (GivfleetError, NotCompilable):
        return None  # a refused argument, a key no row can have, a directive the compiler does not know
    except Exception as exc:  # a compiler bug: the resolvers answer, with their error shapes
        _failed(context, "build", exc)
        return None
    if all(plan is None for plan in plans.values()):
        return None
    try:
        return await _respond(on, context, prepared, root_fields, plans, keys, variables)
    except Exception as exc:  # a query only reads: the resolvers answer it afresh
        _failed(context, "execute", exc)
        return None
    finally:
        await context.reads.close()  # the operation's one connection goes back to the pool (strawberry's
        # ReleaseReads does it on the resolver path)


def _failed(context: Context, stage: str, exc: Exception) -> None:
    """Log an unexpected failure of the compiled path once (the resolver path then answers the request)."""
    log.error("graphql.compiled_unexpected", stage=stage, request_id=context.request_id,
              error_type=type(exc).__name__, error=str(exc)[:500], exc_info=exc)


async def _respond(on: GivfleetSchema, context: Context, prepared: Prepared, root_fields: dict[str, list[FieldNode]],
                   plans: dict[str, Plan], keys: dict[str, Any], variables: dict[str, Any] | None) -> bytes | None:
    """Run the plans (and the resolvers of the others) and assemble the body."""
    texts = await _run(context, plans, keys)
    if texts is None:
        return None  # not found: the resolvers report it, with their message and path
    resolved = [name for name, plan in plans.items() if plan is None]
    errors = b""
    if resolved:
        result = await _resolve(on, prepared, root_fields, resolved, variables, context)
        if result.errors:
            result.errors = [presented(error, context.request_id) for error in result.errors]
            errors = b',"errors":' + _ENCODER.encode([error.formatted for error in result.errors])
        if result.data is None:
            return result_body(result)
        texts |= {name: _ENCODER.encode(result.data[name]).decode() for name in resolved}
    data = ",".join(f'"{name}":{texts[name]}' for name in root_fields)
    return b'{"data":{' + data.encode() + b"}" + errors + b"}"


async def _run(context: Context, plans: dict[str, Plan], keys: dict[str, Any]) -> dict[str, str] | None:
    """The JSON texts of the compiled root fields (one statement each, on one connection); ``None`` when a lookup
    finds nothing or the database fails (the resolvers then answer, and report what they find)."""
    texts: dict[str, str] = {}
    try:
        async with context.reads.connection() as connection:
            for name, plan in plans.items():
                if isinstance(plan, str):
                    texts[name] = plan
                elif plan is not None:
                    text = (await connection.exec_driver_sql(plan.sql, plan.parameters(keys[name]))).scalar()
                    if text is None:
                        return None
                    texts[name] = text
    except (SQLAlchemyError, OSError) as exc:  # the resolver path reports it (e.g. SERVICE_UNAVAILABLE)
        log.warning("graphql.compiled_failed", error_type=type(exc).__name__)
        return None
    return texts


def _plan_key(prepared: Prepared, query: str, operation_name: str | None, scope: ReadScope,
              variables: dict[str, Any] | None) -> tuple[Any, ...]:
    """What the plans are cached by: the document, operation, caller scope and the variables that shape the
    statements (a lookup's key is a parameter, so by-serial lookups share one statement)."""
    shaping = {name: value for name, value in (variables or {}).items() if name not in prepared.lookup_variables}
    return query, operation_name, scope, msgspec.json.encode(shaping)


def _plans(builder: Builder, plan_key: tuple[Any, ...], root_fields: dict[str, list[FieldNode]]) -> dict[str, Plan]:
    """The plans of the root fields, compiled (and cached by ``plan_key``, see :func:`_plan_key`)."""
    plans: dict[str, Plan] = {}
    for name, nodes in root_fields.items():
        statement = _root_statement(builder, nodes)
        plans[name] = statement if statement is None or isinstance(statement, str) else _compiled(statement)
    if not builder.uses_now:  # a statement with the request's moment in it serves that request only
        _PLANS.put(plan_key, plans)
    return plans


def _compiled(statement: Select[Any]) -> Statement:
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    names = tuple(compiled.positiontup or ())
    values = compiled.construct_params(_check=False)
    return Statement(compiled.string, names, {name: values[name] for name in names if name != LOOKUP_KEY})


def _lookup_key(builder: Builder, nodes: list[FieldNode]) -> Any:
    """The key a lookup root field names (``serial`` stripped, a node's row id), else ``None``."""
    name = nodes[0].name.value
    if name not in LOOKUPS and name != "node":
        return None
    arguments = builder.arguments(_QUERY.fields[name], nodes[0])
    if name == "node":
        return from_global_id(arguments["id"])[1]
    value = arguments[LOOKUPS[name][2]]
    if isinstance(value, str):
        value = value.strip()
        if "\x00" in value:
            raise NotCompilable("a key PostgreSQL cannot store")  # not found, as the resolvers say
    return value


def _root_statement(builder: Builder, nodes: list[FieldNode]) -> Select[Any] | str | None:
    """The statement of one root field, a constant, or ``None`` for a field the resolvers answer."""
    name = nodes[0].name.value
    if name == "__typename":
        return f'"{_QUERY.name}"'
    if name not in CONNECTIONS and name not in LOOKUPS and name != "node":
        return None  # introspection, summaries, live data, campaigns, alerts...
    definition = _QUERY.fields[name]
    try:
        if name in CONNECTIONS:
            return builder.connection(name, definition, nodes)
        if name in LOOKUPS:
            type_name, column, _argument = LOOKUPS[name]
            return builder.lookup(type_name, column, nodes)
        if name == "node":
            type_name, _row_id = from_global_id(builder.arguments(definition, nodes[0])["id"])
            return builder.lookup(type_name, "id", nodes)
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
    return cast(ExecutionResult, result)
