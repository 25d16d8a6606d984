"""givfleet: a fleet-management backend for installers of GivEnergy inverters.

It mirrors each tenant's GivEnergy Cloud fleet into PostgreSQL, serves it over GraphQL and REST, and runs
bulk work (syncs, setting campaigns, monitoring) on arq queues under the upstream's rate limits.
"""
