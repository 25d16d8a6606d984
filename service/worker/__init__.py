"""The worker adapter: every domain's jobs (:mod:`service.worker.registry`) assembled into arq workers.

:mod:`service.worker.build` builds one worker per queue and runs several in one process; shared resources are
placed in each job's context at worker start-up. Domains never import this package (they declare jobs with
:mod:`service.jobs`); only the CLI and the launcher do.
"""
