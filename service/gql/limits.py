"""Guards against abusive operations, each refused with a clear message before the expensive step it guards:
a token limit while parsing (:data:`~service.core.limits.MAX_GRAPHQL_TOKENS`), then depth and alias count while
validating, then an estimated cost before any resolver runs.

The cost of an operation bounds how many objects it can return: every field costs 1, and the selection under a
list-returning field counts once per row it may return: its ``first``/``limit`` argument (a variable counts with
the value sent, else its declared default), else :data:`DEFAULT_PAGE_SIZE` for a connection,
:data:`~service.core.limits.MAX_NESTED_LIST` for the relation lists (which return at most that many rows), and
:data:`DEFAULT_LIST_SIZE` for other plural fields (short by nature: batteries, meters).
``inverters(first: 100) { edges { node { batteries { serial } } } }`` thus costs about
1 + 100 x (1 + 1 + (1 + 8 x 1)). Fragments are expanded; introspection is free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache, partial
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
    specified_rules,
    value_from_ast_untyped,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.types.graphql import OperationType

from service.core.limits import CACHED_DOCUMENT_BYTES, DEFAULT_PAGE_SIZE, MAX_GRAPHQL_TOKENS, MAX_NESTED_LIST

MAX_DEPTH = 12
MAX_ALIASES = 20
MAX_COST = 25_000
VALIDATION_CACHE_SIZE = 512
DEFAULT_LIST_SIZE = 8
# Relation lists that can be long (an installer's sub-contractor has hundreds of customers): their resolvers
# return at most ``first`` rows, MAX_NESTED_LIST by default, so that is what they cost.
LONG_LISTS = frozenset({"children", "sites", "dongles", "inverters"})
# Arguments that bound how many rows a field returns (``first`` of connections, ``limit`` of lists); a
# connection (a field selecting ``edges``) without one returns a default page.
SIZE_ARGUMENTS = frozenset({"first", "limit"})


def operation_cost(document: Any, operation_name: str | None, variables: Mapping[str, Any] | None) -> int:
    """The estimated cost of the operation to run in ``document`` (see the module docstring)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if not operations:
        return 0
    operation = operations[0]
    declared = {definition.variable.name.value: value_from_ast_untyped(definition.default_value)
                for definition in operation.variable_definitions or () if definition.default_value is not None}
    return _selection_cost(operation.selection_set, fragments, {**declared, **(variables or {})}, set())


def _selection_cost(selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode],
                    variables: Mapping[str, Any], visiting: set[str]) -> int:
    total = 0
    for field in _fields(selection_set, fragments, visiting):
        if field.name.value.startswith("__"):
            continue
        children = _selection_cost(field.selection_set, fragments, variables, visiting)
        total += 1 + _multiplier(field, variables) * children
    return total


def _fields(selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode],
            visiting: set[str]) -> Iterator[FieldNode]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, visiting)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visiting or name not in fragments:
                continue  # cycles and unknown fragments are reported by standard validation
            visiting.add(name)
            yield from _fields(fragments[name].selection_set, fragments, visiting)
            visiting.discard(name)


def _multiplier(field: FieldNode, variables: Mapping[str, Any]) -> int:
    if field.selection_set is None:
        return 1
    is_connection = any(isinstance(child, FieldNode) and child.name.value == "edges"
                        for child in field.selection_set.selections)
    for argument in field.arguments or ():
        if argument.name.value not in SIZE_ARGUMENTS:
            continue
        node = argument.value
        value = variables.get(node.name.value) if isinstance(node, VariableNode) else getattr(node, "value", None)
        try:
            return max(1, int(value)) if value is not None else DEFAULT_PAGE_SIZE
        except (TypeError, ValueError):
            return DEFAULT_PAGE_SIZE
    if is_connection:
        return DEFAULT_PAGE_SIZE
    if field.name.value in LONG_LISTS:
        return MAX_NESTED_LIST
    return DEFAULT_LIST_SIZE if _looks_like_list(field) else 1


# Plural field names return lists; a cheap, schema-free heuristic that errs on the side of a higher estimate.
# ``edges`` is not one: its connection was already counted once per row.
def _looks_like_list(field: FieldNode) -> bool:
    name = field.name.value
    return name.endswith(("s", "history")) and name not in {"status", "address", "edges", "pageInfo"}


class QueryCostLimiter(SchemaExtension):
    """Refuse an operation whose estimated cost exceeds ``max_cost`` (it needs the variables, hence an
    execution hook rather than a validation rule)."""

    def __init__(self, max_cost: int = MAX_COST) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.result is None:
            cost = operation_cost(context.graphql_document, context.operation_name, context.variables)
            if cost > self.max_cost:
                error = GraphQLError(
                    f"Query cost {cost} exceeds the limit of {self.max_cost}: ask for fewer rows (first:) "
                    "or fewer nested lists.",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": self.max_cost},
                )
                if context.operation_type is OperationType.SUBSCRIPTION:
                    raise error  # a subscription starts regardless of a result set here; an error ends it
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield


# The parses of the last 512 small documents (by text and parse options).
cached_parse: Callable[..., DocumentNode] = lru_cache(maxsize=512)(parse)


class SmallDocumentParserCache(SchemaExtension):
    """Cache the parse of documents up to :data:`~service.core.limits.CACHED_DOCUMENT_BYTES`; larger ones are
    parsed (under the token limit) each time and freed with the request, so they never pin memory."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and len(context.query) <= CACHED_DOCUMENT_BYTES:
            context.graphql_document = cached_parse(context.query, **context.parse_options)
        yield  # strawberry parses what no extension did


class SmallDocumentValidationCache(ValidationCache):
    """strawberry's validation cache, for small documents only (see :class:`SmallDocumentParserCache`)."""

    def on_validate(self) -> Iterator[None]:
        if len(self.execution_context.query or "") <= CACHED_DOCUMENT_BYTES:
            yield from super().on_validate()
        else:
            yield  # strawberry validates what no extension did


@functools.cache
def limit_rules(max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules of the depth and alias limits, built once per limit (the very same classes for every
    request and for the compiled path, so the validation cache, keyed by document and rules, is shared)."""
    return (*QueryDepthLimiter(max_depth=max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules)


def cached_validation(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    """The errors of ``document`` under the default limits, from the cache the resolver path fills (strawberry's
    validation cache of :data:`VALIDATION_CACHE_SIZE` entries, keyed by schema, document and rules)."""
    validate = _get_validate_cache(VALIDATION_CACHE_SIZE)
    errors: list[GraphQLError] = validate(schema, document, (*specified_rules, *limit_rules()))
    return errors


def limit_extensions(max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES, max_cost: int = MAX_COST,
                     max_tokens: int = MAX_GRAPHQL_TOKENS, cache_size: int = VALIDATION_CACHE_SIZE
                     ) -> list[Callable[[], SchemaExtension]]:
    """Factories of the extensions enforcing every limit, in the order they act (each request gets its own
    instances): the token limit and the bounded caches at parsing, depth and aliases at validation, the cost at
    execution.

    The depth and alias rules are built once, so every request validates with the very same rule classes and
    the validation cache (keyed by document and rules) can hit.
    """
    return [partial(MaxTokensLimiter, max_tokens), SmallDocumentParserCache,
            partial(SmallDocumentValidationCache, maxsize=cache_size),
            partial(AddValidationRules, list(limit_rules(max_depth, max_aliases))),
            partial(QueryCostLimiter, max_cost)]
