"""The mirror: each tenant's GivEnergy fleet in PostgreSQL, complete, current and cheap to keep current.

Tables (models in :mod:`service.db.models.mirror`; every row has ``tenant_id``, ``first_seen_at``,
``last_seen_at``, ``changed_at``, ``removed_at``; links are composite foreign keys on ``(tenant_id, key)``):

- ``mirror_accounts`` (:class:`FleetAccount`): ``upstream_id``, ``username``, names, ``role``, contact fields,
  ``timezone``/``standard_timezone``, ``parent_upstream_id``, ``depth`` (the credential's account is depth 0);
- ``mirror_sites`` (:class:`Site`): ``upstream_id``, ``name``, ``account_username`` -> ``account_upstream_id``,
  ``date_created``, ``country``, ``timezone``/``tz_timezone``, coordinates, ``type``, ``products``,
  ``scheme_status`` (site status; approved credentials only);
- ``mirror_dongles`` (:class:`Dongle`): ``serial``, ``type``, ``firmware_version``, ``commission_date``,
  ``account_upstream_id``, ``site_upstream_id``, ``inverter_serial``;
- ``mirror_inverters`` (:class:`Inverter`): ``serial``, ``dongle_serial``, ``account_upstream_id``,
  ``site_upstream_id``, ``status`` and ``status_since``, ``last_online``/``last_updated``, ``model``, battery
  nominal data, charge/discharge rates, warranty, ``firmware_arm``/``firmware_dsp``, ``flags``,
  ``is_controllable``;
- ``mirror_battery_modules`` (key ``inverter_serial`` + ``position``; module numbers can repeat) and
  ``mirror_meters`` (key ``inverter_serial`` + ``address``);
- ``mirror_inverter_changes`` (:class:`InverterChange`): ``kind`` (status, firmware_arm, firmware_dsp, account,
  removed, restored), ``from_value``, ``to_value``, ``observed_at``, ``sync_run_id``;
- ``mirror_sync_runs`` (:class:`SyncRun`): plan, ETA, requests used, 429s, 5xx, rows inserted/updated/removed,
  history rows, progress checkpoint, outcome; ``mirror_sync_schedules``: intervals and next due times.

Modules:

- :mod:`service.mirror.schemas`: normalised upstream records, snapshots, plans and counts.
- :mod:`service.mirror.reconcile`: the pure diff of an upstream snapshot against stored rows.
- :mod:`service.mirror.upstream`: fetching a snapshot through the client (discovery, exact plan, accounting).
- :mod:`service.mirror.repository`: tenant-scoped reads of stored rows and set-based writes.
- :mod:`service.mirror.runner`: one sync run (lock, run row, plan, fetch, reconcile, write, checkpoints).
- :mod:`service.mirror.service`: asking for syncs (after commit), schedules.
- :mod:`service.mirror.jobs`: the arq jobs ``mirror.sync`` and ``mirror.schedule`` (cron, every minute).
- :mod:`service.mirror.live`: live reads passed through to the cloud (cache, access rules, refusals), for GraphQL
  and REST.
- :mod:`service.mirror.cli_view`: ``givfleet sync --tenant X [--full]``.
"""
