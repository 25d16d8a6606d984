"""The arq adapter's domain-free half: typed job declarations, queues, the job context, enqueue-after-commit.

Jobs are plain coroutines named ``"domain.verb"`` that take ids, declared with :func:`service.jobs.typed.job` in
each domain's ``jobs.py``. This package imports no domain; :mod:`service.worker` assembles every domain's jobs into
workers.
"""
