"""GraphQL of the fault monitor: ``alerts`` and ``incidents`` connections, and the alert and maintenance
mutations."""
