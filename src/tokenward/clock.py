"""Injected time: every component takes a ``Clock`` so tests freeze and advance it."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "FrozenClock", "system_clock"]

Clock = Callable[[], float]
system_clock: Clock = time.time


class FrozenClock:
    """A clock that stands still until told to move; for tests and simulations."""

    __slots__ = ("now",)

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"FrozenClock({self.now})"
