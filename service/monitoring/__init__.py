"""Fault monitoring: detect faults and lost communication across each tenant's fleet within one cycle, and keep
them as alerts people can act on (acknowledge, clear), grouped into incidents per site, with a fleet-wide storm
guard and maintenance windows. Alert changes write notification events to the outbox in the same transaction.

- :mod:`service.monitoring.rules`: the pure core (severities, event diff, storm guard, sweep plan);
- :mod:`service.monitoring.sweep`: one monitoring cycle of a tenant (sweep, targeted reads, round-robin);
- :mod:`service.monitoring.service`: what people do with alerts and maintenance windows;
- :mod:`service.monitoring.jobs`: the ``monitor`` queue's jobs.
"""
