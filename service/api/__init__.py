"""The REST adapter: Litestar controllers (thin: parse, call a service, serialise) and HTTP error shapes."""
