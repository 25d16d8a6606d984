"""A simulated GivEnergy Cloud: the v1 API, the legacy portal API and a ground-truth side door.

It stands alone (it imports nothing from givfleet's domain modules) and speaks the same HTTP contract as
``api.givenergy.cloud/v1`` and ``www.givenergy.cloud/GivManage/api``, with the behaviour the real service
shows beyond its documentation (see ``docs/upstream/REAL-WORLD-BEHAVIOUR.md``).

Quick start::

    from service.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(fleet_size=20, seed=1))      # or SimulatorConfig.quiet(fleet_size=20)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/v1",
                                 headers={"Authorization": f"Bearer {sim.tokens['company']}"}) as client:
        page = (await client.get("/communication-device", params={"pageSize": 50})).json()

Configuration (:class:`SimulatorConfig`, frozen, every field defaulted): ``fleet_size``, ``seed``,
``start_time`` (aware; ``None`` = now), ``clock_speed`` (1.0 real time, 0 frozen), ``history_days``,
``rate_limits_enabled``, ``rate_limit_per_window`` (300), ``rate_limit_window_seconds`` (60, real monotonic
time), ``notification_limit`` (10) / ``notification_window_seconds`` (3600), ``default_page_size`` (15),
``max_page_size`` (``None``: no cap, as observed), ``latency_seconds`` (device calls), ``control_error_probabilities``
({code: p} for -1..-7), ``server_error_probability`` (500/502/503), ``gateway_timeout_probability`` (504),
``no_subscription_status`` (401/402/403), shares of awkward inverters (``locked_fraction``,
``another_actor_fraction``, ``not_controllable_fraction``, ``dead_fraction``, ``new_status_fraction``),
behaviour rates per inverter per day (``fault_rate_per_day``, ``lost_rate_per_day``,
``firmware_update_rate_per_day``, ``setting_drift_rate_per_day``, ``actor_drift_rate_per_day``),
``ev_charger_fraction``,
``smart_device_fraction``. ``SimulatorConfig.quiet(**overrides)`` is the calm test world: 20 inverters, seed 1,
frozen clock at 2026-06-01T12:00Z, no history, no spontaneous behaviour, no awkward inverters.

Surfaces of ``sim.app`` (an ASGI app; ``sim`` itself is one too):

- ``/v1/...``: every endpoint of the v1 docs, with bearer auth, scopes, account-type and approval badges,
  per-token fixed-window limits on real monotonic time (``X-RateLimit-Limit``/``X-RateLimit-Remaining`` on
  every answer, 429 with ``Retry-After``; ``POST /notification/send`` has its own 10-per-60-minutes bucket),
  Laravel pagination, the documented 422 body, remote-control codes -1..-7 inside HTTP 200.
- ``/GivManage/api/...``: legacy ``login`` (session cookie ``JSESSIONID``; credentials from
  ``sim.truth.account(id).username`` / ``.password``), ``plant/getPlantList``, ``inverter/getInverterInfo``,
  ``inverter/getInverterRuntime``, ``inverter/getInverterEnergy``, ``pcs/batCell/getBatCellData``.
- ``/_simulator/...``: ground truth and mutators over HTTP, unauthenticated (see :mod:`.sidedoor`):
  ``GET tokens|clock|summary|fleet|events|control-log?since=N|counters|notifications``,
  ``GET inverters/{serial}[/settings]``, ``POST clock/advance {"seconds"}`` (at most 365 days),
  ``POST clock/speed {"speed"}``,
  ``POST tokens {"account_id","name","scopes","approved","subscribed","rate_limit"}``,
  ``POST inverters/state {"serials", "offline"|"locked"|"timeout"|"another_actor": bool}``,
  ``POST inverters/{serial}/status {"status"}``, ``POST inverters/{serial}/firmware {"arm","dsp"}`` (or
  ``{"duration_seconds"}`` for an UPDATING phase), ``POST inverters/{serial}/settings/{id} {"value"}`` (drift),
  ``POST faults {"serials","event","duration_seconds"}``, ``POST faults/clear {"serials"}``,
  ``POST lost {"serials","duration_seconds"}``, ``POST dongles {"account_id","model"}``,
  ``DELETE dongles/{serial}``, ``POST dongles/{serial}/move {"account_id"}``.

Tokens (``sim.tokens``: name -> bearer string; deterministic per seed): ``distributor`` (sees the whole
fleet), ``company`` (the main installer company: ~90% of the fleet), ``company_unapproved`` (same account, not
approved), ``company_readonly`` (same account, no ``:control`` scopes), ``other_company`` (the remaining ~10%),
``engineer``, ``sub_contractor`` (fleet_size 11+), ``customer`` (an OWNER with inverters, an EV charger and a
smart device), ``viewer`` (a VIEWER of that customer), ``no_subscription`` (the company account without a
subscription: every call answers ``config.no_subscription_status``). ``sim.create_token(account_id, ...)``
mints more (fewer scopes, unapproved, unsubscribed, ``rate_limit=`` for a commercial tier).

Clock (``sim.clock``): ``now()`` (aware UTC), ``advance(timedelta)`` runs due behaviour: faults opening and
clearing (events with start/end), LOST and back, firmware updates (UPDATING then higher ARM/DSP), settings
changed by another actor. Data points exist every 5 minutes. ``clock_speed=0`` freezes time.
``on_move(callback)`` is called after every ``advance`` and ``set_speed`` (``givfleet up`` then snapshots the demo).

Snapshots (:mod:`.snapshot`): ``sim.snapshot(ahead=timedelta(0))`` is the world as it is now (fleet records,
events, LOST/UPDATING states, scheduled happenings and random generators, tokens, control log, counters,
notifications); ``snapshot.to_json(snap)`` / ``snapshot.from_json(text, config)`` write and read it as JSON
(another seed, fleet size or format: ``ForeignSnapshotError``); ``Simulator(config, resume=snap)`` carries on from
it instead of generating, its clock no earlier than the snapshot's time plus ``ahead``. ``givfleet up`` keeps its
demo cloud across restarts this way, calling ``sim.forget(before)`` first (fault events that ended, drifts and
control calls before a time are dropped, and all but the latest 1000 notifications; ``control-log?since=N`` still
counts every call).

Ground truth (``sim.truth``, a :class:`~service.simulator.truth.Truth`): ``accounts()``, ``account(id)``,
``account_of_token(name_or_token)``, ``children(id)``, ``devices()`` (records with ``serial``,
``dongle_serial``, ``model.name``, ``owner_id``, ``site_id``, ``status``, ``arm``/``dsp``, ``flags``,
``locked``, ``another_actor``, ...), ``device(serial)``, ``visible_devices(token)``, ``visible_serials(token)``,
``sites()``, ``ev_chargers()``, ``smart_devices()``, ``communication_device_json(serial)``,
``settings(serial)`` / ``setting(serial, id)`` (true values), ``control_log()`` (:class:`ControlCall`: time,
token, account_id, action, serial, setting_id, value, outcome, response, applied, stored, context),
``drifts()``, ``events(serial=None)``, ``counters()`` (name -> requests, throttled, by_status),
``notifications()``, ``summary()``.

Mutators (on ``sim``; serials may be inverter or dongle serials): ``set_status(serial, status)``,
``set_offline(serials, True)`` (-2), ``set_locked(serials, True)`` (-7), ``set_timeout(serials, True)`` (-1),
``set_another_actor(serials, True)`` (accepted, not applied), ``inject_fault(serials, event, duration)``,
``clear_faults(serials)``, ``make_lost(serials, duration)``, ``update_firmware(serial, duration, arm=, dsp=)``,
``drift_setting(serial, setting_id, value)``, ``add_dongle(account_id, model)`` -> Device,
``remove_dongle(serial)``, ``move_dongle(serial, account_id)``, ``create_token(account_id, ...)``.

Serve it with :func:`service.simulator.server.run` (``givfleet simulator``).
"""

from service.simulator.config import SimulatorConfig
from service.simulator.core import Simulator
from service.simulator.records import ControlCall, Counters, Token

__all__ = ["ControlCall", "Counters", "Simulator", "SimulatorConfig", "Token"]
