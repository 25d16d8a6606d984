"""The arq adapter: worker settings, the typed job context, and enqueue-after-commit.

Jobs are plain coroutines named ``"domain.verb"`` that take ids, living in each domain's ``jobs.py`` and listed
in :mod:`service.jobs.registry`. Shared resources are placed in the context at worker start-up.
"""
