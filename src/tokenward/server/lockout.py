"""Progressive lockout arithmetic, and lockout state for usernames that do not exist.

SECURITY.md "Accounts": the login response must not reveal whether an account exists.
Real accounts keep their failure count on the user row (shared by every node through
the store). If unknown names had no lockout, an attacker could tell them apart: after
the threshold a real account answers 429, an unknown one 401 forever. So unknown names
get the same progressive lockout, kept in the ephemeral state: Redis when configured, so
the lock holds on every node, else this node's bounded memory (oldest names dropped).

A login must not fail because Redis is down: a failing call falls back to this node's
memory for a while (still a lockout, per node), then Redis is tried again. Locks made
meanwhile stay in force here until they expire.

The counts are kept for ``PHANTOM_TTL`` after a name's last failure, so Redis stays
bounded whatever names an attacker invents. A real account's count lasts until a
success; an attacker who waits that long between two guesses at one name could tell the
difference once — the price of bounded state, as with the oldest names dropped here.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from tokenward.clock import Clock, system_clock
from tokenward.errors import StoreUnavailable
from tokenward.store.ephemeral import Ephemeral, MemoryEphemeral

__all__ = ["MAX_LOCK_DOUBLINGS", "PHANTOM_TTL", "LockPolicy", "PhantomLockouts", "lock_until"]

log = logging.getLogger("tokenward.server")
MAX_LOCK_DOUBLINGS = 32  # 2**32 * base is far beyond any cap; keeps the float finite
PHANTOM_TTL = 7 * 86400.0  # seconds an unknown name's failure count outlives its last failure
FALLBACK_SECONDS = 30.0  # how long to keep to memory after a Redis failure (as ratelimit.py)
KEY = "phantom:"  # counters and locks under {redis_prefix}:count:phantom:NAME and :lock:


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
    """Failure counts and lock times for unknown usernames: in ``shared`` (Redis) when
    given, else in memory, at most ``max_names`` of them."""

    def __init__(
        self,
        shared: Ephemeral | None = None,
        *,
        max_names: int = 10_000,
        clock: Clock = system_clock,
        timer: Clock = time.monotonic,  # for the fallback period only
    ) -> None:
        self._local = MemoryEphemeral(clock, max_keys=max_names)
        self._shared, self._timer = shared, timer
        self._shared_down_until = 0.0

    def _store(self) -> Ephemeral | None:
        """The shared state when it is configured and not known to be down."""
        if self._shared is None or self._timer() < self._shared_down_until:
            return None
        return self._shared

    def _failed(self, exc: StoreUnavailable) -> None:
        self._shared_down_until = self._timer() + FALLBACK_SECONDS
        log.warning("lockout storage failed (%s); counting locally", exc.detail)

    async def locked_until(self, name: str, now: float) -> float | None:
        until = await self._local.locked_until(KEY + name, now)  # (locks from an outage)
        shared = self._store()
        if shared is not None:
            try:
                there = await shared.locked_until(KEY + name, now)
            except StoreUnavailable as exc:
                self._failed(exc)
            else:
                until = max(until or 0.0, there or 0.0) or None
        return until

    async def record_failure(self, name: str, now: float, policy: LockPolicy) -> float | None:
        """Count one more failure; lock when the policy says so. Returns the lock time."""
        shared = self._store()
        if shared is not None:
            try:
                return await _record(shared, KEY + name, now, policy)
            except StoreUnavailable as exc:
                self._failed(exc)
        return await _record(self._local, KEY + name, now, policy)

    async def close(self) -> None:
        await self._local.close()
        if self._shared is not None:
            await self._shared.close()


async def _record(state: Ephemeral, key: str, now: float, policy: LockPolicy) -> float | None:
    # INCR is atomic across nodes, so N failures at once count N; the lock keeps the later time
    until = lock_until(await state.incr(key, PHANTOM_TTL), now, policy)
    if until is not None:
        await state.lock(key, until, now)
    return until
