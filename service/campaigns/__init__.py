"""Campaigns: bulk setting writes, reads and restarts across thousands of inverters, planned, staged, verified and
reversible.

- :mod:`.values`, :mod:`.waves`, :mod:`.outcomes`, :mod:`.window`: pure cores (value rules, wave planning,
  outcome classification and rollback grouping, the time window), property-tested.
- :mod:`.planner`: the dry run (target set, exclusions with reasons, wave sizes, request cost, ETA) and the
  per-(model, firmware) setting catalogue learnt from upstream.
- :mod:`.service`: the lifecycle (create, plan, approve, start, pause, resume, cancel, rollback), audited.
- :mod:`.engine` and :mod:`.jobs`: the ``campaign.tick`` job on the ``control`` queue, one chunk per tick.
"""
