"""GraphQL face of the tenants domain: API keys and credentials (mutations; the views are the REST ones)."""
