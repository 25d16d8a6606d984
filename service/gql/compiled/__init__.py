"""The compiled read path of GraphQL: query operations over the mirror answered with one SQL statement per root
field, the response JSON built by PostgreSQL (see ``docs/graphql-compiled.md``). Public: :func:`answer`."""

from service.gql.compiled.executor import answer, result_body, result_body_of

__all__ = ["answer", "result_body", "result_body_of"]
