"""Live fields: what the mirror does not hold, read through from the GivEnergy cloud (placeholder)."""

from __future__ import annotations

import strawberry


class LiveReader:
    """Reads live data for one tenant through the client's interactive lane, with a short cache."""


@strawberry.type(description="Live data of an inverter, read from the GivEnergy cloud.")
class InverterLive:
    serial: str
