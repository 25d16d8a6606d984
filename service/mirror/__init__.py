"""The mirror: each tenant's GivEnergy fleet in PostgreSQL, complete, current and cheap to keep current.

- :mod:`service.mirror.schemas`: normalised upstream records, snapshots, plans and counts.
- :mod:`service.mirror.reconcile`: the pure diff of an upstream snapshot against stored rows.
- :mod:`service.mirror.upstream`: fetching a snapshot through the client (plans, request accounting).
- :mod:`service.mirror.repository`: tenant-scoped reads of stored rows and bulk upserts.
- :mod:`service.mirror.service`: one sync run (plan, fetch, reconcile, write, record) for one tenant.
- :mod:`service.mirror.jobs`: the arq jobs ``mirror.sync`` and ``mirror.schedule``.
"""
