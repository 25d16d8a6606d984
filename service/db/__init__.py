"""Database plumbing: the declarative base, engine and session factories, and the ORM models."""
