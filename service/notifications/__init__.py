"""Notifications: who hears about what, and how, with nothing lost.

- :mod:`.outbox`: events written by other domains in the transaction of the change that caused them;
- :mod:`.delivery`: the relay routes each event once to the channels whose rules match (quiet hours hold the
  non-critical); then it packs deliveries into messages (digests for GivEnergy and e-mail, one per event for webhooks),
  sends them with at-least-once semantics, one attempt row per try;
- :mod:`.channels`: the transports (GivEnergy ``POST /notification/send`` through the shared limiter, SMTP,
  Standard Webhooks); :mod:`.digest`, :mod:`.signing` and :mod:`.addresses` are their pure parts;
- :mod:`.service`: management (channels, secrets, rules, quiet hours, the delivery log, replay, test sends);
- :mod:`.jobs`: the arq jobs on the ``notify`` queue and the sweeper.
"""
