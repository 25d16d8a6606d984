"""The simulation clock: real time by default, accelerable, frozen when the speed is zero."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimulationClock:
    """Simulated UTC time.

    ``now()`` is ``start + offset + elapsed_real_seconds * speed``; :meth:`advance` adds to the offset and then
    runs whatever behaviour fell due (faults opening/clearing, LOST and back, firmware updates, setting drift).
    """

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        """Create a clock.

        Args:
            start: Simulation time at creation (timezone-aware).
            speed: Simulated seconds per real second; 0 freezes the clock.
        """
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._real_origin = time.monotonic()
        self._offset = timedelta(0)
        self._on_advance: Callable[[datetime], None] | None = None
        self._on_move: Callable[[], None] | None = None

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def bind(self, on_advance: Callable[[datetime], None]) -> None:
        """Register the callback that runs due behaviour up to a given time (the simulator does this)."""
        self._on_advance = on_advance

    def on_move(self, moved: Callable[[], None] | None) -> None:
        """Call ``moved`` after every :meth:`advance` and :meth:`set_speed` (``None`` stops it): whoever records how
        far the clock may have gone learns of the moves that do not follow the speed."""
        self._on_move = moved

    def now(self) -> datetime:
        """The current simulation time (aware UTC)."""
        current = self._start + self._offset
        if self._speed:
            current += timedelta(seconds=(time.monotonic() - self._real_origin) * self._speed)
        return current

    def advance(self, delta: timedelta) -> datetime:
        """Move simulated time forward and run the behaviour that fell due.

        Args:
            delta: How far to move (must not be negative).

        Returns:
            The new simulation time.
        """
        if delta < timedelta(0):
            raise ValueError("the simulation clock cannot go backwards")
        self._offset += delta
        current = self.now()
        if self._on_advance is not None:
            self._on_advance(current)
        if self._on_move is not None:
            self._on_move()
        return current

    def set_speed(self, speed: float) -> None:
        """Change the speed without jumping: time so far is kept."""
        current = self.now()
        self._start = current
        self._offset = timedelta(0)
        self._real_origin = time.monotonic()
        self._speed = speed
        if self._on_move is not None:
            self._on_move()
