"""Per-domain GraphQL types, composed into one root Query by :mod:`service.gql.schema`."""
