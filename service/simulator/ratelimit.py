"""Per-token fixed-window rate limits on real (monotonic) time, as the real service counts them.

A window opens with the first counted request and lasts ``window_seconds``; every request in it counts,
whatever its answer. Endpoints with a custom limit have their own bucket and do not touch the global one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of counting one request."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` headers, plus ``Retry-After`` on a refusal."""
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class _Window:
    __slots__ = ("count", "opened")

    def __init__(self, opened: float) -> None:
        self.opened = opened
        self.count = 0


class RateLimiter:
    """Fixed windows per (token, bucket)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        """Create a limiter.

        Args:
            monotonic: Source of real seconds (injectable for tests of the limiter itself).
        """
        self._monotonic = monotonic
        self._windows: dict[tuple[str, str], _Window] = {}

    def hit(self, token: str, bucket: str, limit: int, window_seconds: float) -> Decision:
        """Count a request and say whether it may proceed.

        Args:
            token: Who is counted.
            bucket: ``"global"`` or the name of a custom-limited endpoint.
            limit: Requests allowed per window.
            window_seconds: Window length in real seconds.

        Returns:
            The decision with the header values.
        """
        now = self._monotonic()
        key = (token, bucket)
        window = self._windows.get(key)
        if window is None or now - window.opened >= window_seconds:
            window = _Window(now)
            self._windows[key] = window
        retry_after = max(1, math.ceil(window.opened + window_seconds - now))
        if window.count >= limit:
            return Decision(False, limit, 0, retry_after)
        window.count += 1
        return Decision(True, limit, limit - window.count, retry_after)

    def peek(self, token: str, bucket: str, limit: int, window_seconds: float) -> Decision:
        """Header values without counting (for answers that the real service does not count)."""
        now = self._monotonic()
        window = self._windows.get((token, bucket))
        if window is None or now - window.opened >= window_seconds:
            return Decision(True, limit, limit, math.ceil(window_seconds))
        retry_after = max(1, math.ceil(window.opened + window_seconds - now))
        return Decision(True, limit, max(0, limit - window.count), retry_after)
