"""Progressive lockout arithmetic, and lockout state for usernames that do not exist.

SECURITY.md "Accounts": the login response must not reveal whether an account exists.
Real accounts keep their failure count on the user row (shared by every node through
the store). If unknown names had no lockout, an attacker could tell them apart: after
the threshold a real account answers 429, an unknown one 401 forever. So unknown names
get the same progressive lockout, kept here, bounded in memory (oldest names dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

__all__ = ["MAX_LOCK_DOUBLINGS", "LockPolicy", "PhantomLockouts", "lock_until"]

MAX_LOCK_DOUBLINGS = 32  # 2**32 * base is far beyond any cap; keeps the float finite


class LockPolicy(NamedTuple):
    threshold: int  # failures before the first lock
    base: float  # seconds of the first lock; each further failure doubles it
    cap: float  # longest lock


def lock_until(failures: int, now: float, policy: LockPolicy) -> float | None:
    """When ``failures`` consecutive failures lock the account until, or None."""
    if failures < policy.threshold:
        return None
    doublings = min(failures - policy.threshold, MAX_LOCK_DOUBLINGS)
    seconds: float = min(policy.base * 2.0**doublings, policy.cap)
    return now + seconds


class PhantomLockouts:
    """Failure counts and lock times for unknown usernames; at most ``max_names`` kept."""

    def __init__(self, max_names: int = 10_000) -> None:
        self._state: OrderedDict[str, tuple[int, float | None]] = OrderedDict()
        self._max = max_names

    def locked_until(self, name: str, now: float) -> float | None:
        _, until = self._state.get(name, (0, None))
        return until if until is not None and now < until else None

    def record_failure(self, name: str, now: float, policy: LockPolicy) -> float | None:
        failures = self._state.pop(name, (0, None))[0] + 1
        until = lock_until(failures, now, policy)
        self._state[name] = (failures, until)
        while len(self._state) > self._max:
            self._state.popitem(last=False)
        return until

    def __len__(self) -> int:
        return len(self._state)
