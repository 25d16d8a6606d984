"""The GraphQL adapter (strawberry): the schema at ``/graphql``, its typed context, per-request dataloaders,
per-domain types and queries, subscriptions over a WebSocket (:mod:`service.gql.subscriptions`), and the limits
and error policy that keep it safe.

Public surface: :data:`service.gql.schema.schema`, :func:`service.gql.schema.export_sdl` and
:func:`service.gql.http.graphql_controller`.
"""
