"""Wave planning: a canary first, then waves growing by a factor up to a largest size; chunks of <= 1,000 serials."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

MULTI_CONTROL_MAX = 1000
"""Serials per multi-control request (the documented maximum)."""

T = TypeVar("T")


def wave_sizes(total: int, *, canary: int, growth: float, largest: int) -> list[int]:
    """Sizes of the waves that cover ``total`` inverters.

    The first wave is the canary; each next one is ``growth`` times the previous (rounded up), never more
    than ``largest``; the last takes what is left. Every size is at least 1 and they add up to ``total``.
    """
    if total <= 0:
        return []
    canary, largest = max(1, canary), max(1, largest)
    sizes: list[int] = []
    size = min(canary, largest)
    left = total
    while left > 0:
        take = min(size, left)
        sizes.append(take)
        left -= take
        size = min(largest, max(size + 1, math.ceil(size * max(growth, 1.0)))) if growth > 1 else size
    return sizes


def chunks(items: Sequence[T], size: int = MULTI_CONTROL_MAX) -> list[list[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def request_cost(sizes: Sequence[int], *, reads_before: bool, writes: bool, reads_after: bool) -> int:
    """Upstream requests a campaign with these wave sizes makes when nothing is retried (an upper bound when
    skip-if-set leaves inverters out of the write)."""
    per_wave = int(reads_before) + int(writes) + int(reads_after)
    return sum(per_wave * math.ceil(size / MULTI_CONTROL_MAX) for size in sizes)
