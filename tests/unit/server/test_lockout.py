"""Lockout arithmetic and PhantomLockouts in memory, and when the shared state fails.

The same lockout on Redis, shared by two nodes, is in tests/contract/test_lockout.py.
"""

from __future__ import annotations

import pytest

from tokenward import FrozenClock
from tokenward.errors import StoreUnavailable
from tokenward.server.lockout import FALLBACK_SECONDS, LockPolicy, PhantomLockouts, lock_until
from tokenward.store.ephemeral import MemoryEphemeral
from tokenward.store.redis_ephemeral import RedisEphemeral

pytestmark = pytest.mark.anyio
T0 = 1_700_000_000.0
POLICY = LockPolicy(threshold=3, base=30, cap=100)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Flaky(MemoryEphemeral):
    """Shared state that fails while ``down`` is set, counting the calls it refused."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(clock)
        self.down, self.refused = False, 0

    def _check(self) -> None:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("Redis: ConnectionError")

    async def incr(self, key: str, ttl: float) -> int:
        self._check()
        return await super().incr(key, ttl)

    async def lock(self, key: str, until: float, now: float) -> None:
        self._check()
        await super().lock(key, until, now)

    async def locked_until(self, key: str, now: float) -> float | None:
        self._check()
        return await super().locked_until(key, now)


def test_lock_until_doubles_from_the_threshold_and_is_capped() -> None:
    assert [lock_until(n, T0, POLICY) for n in (1, 2)] == [None, None]
    locks = [lock_until(n, T0, POLICY) for n in (3, 4, 5, 6)]
    assert locks == [T0 + 30, T0 + 60, T0 + 100, T0 + 100]
    assert lock_until(10**6, T0, POLICY) == T0 + 100  # no overflow far past the cap


async def test_unknown_names_lock_like_accounts() -> None:
    clock = FrozenClock(T0)
    phantoms = PhantomLockouts(clock=clock)
    assert [await phantoms.record_failure("mallory", T0, POLICY) for _ in range(3)] == [
        None,
        None,
        T0 + 30,
    ]
    assert await phantoms.locked_until("mallory", T0 + 29) == T0 + 30
    assert await phantoms.locked_until("eve", T0) is None
    clock.now = T0 + 30
    assert await phantoms.locked_until("mallory", clock.now) is None
    assert await phantoms.record_failure("mallory", clock.now, POLICY) == clock.now + 60


async def test_memory_keeps_at_most_max_names() -> None:
    phantoms = PhantomLockouts(max_names=10, clock=FrozenClock(T0))
    for name in ("first", *(f"n{i}" for i in range(20))):
        for _ in range(3):
            await phantoms.record_failure(name, T0, POLICY)
    assert await phantoms.locked_until("n19", T0) == T0 + 30
    assert await phantoms.locked_until("first", T0) is None  # the oldest name was dropped


async def test_a_shared_state_that_fails_falls_back_to_memory() -> None:
    clock, timer = FrozenClock(T0), FrozenClock(0)
    shared = Flaky(clock)
    phantoms = PhantomLockouts(shared, clock=clock, timer=timer)
    await phantoms.record_failure("mallory", T0, POLICY)  # counted in the shared state
    shared.down = True
    for _ in range(3):  # the login goes on: counted here instead
        await phantoms.record_failure("mallory", T0, POLICY)
    assert await phantoms.locked_until("mallory", T0) == T0 + 30
    assert shared.refused == 1  # then Redis is left alone for a while
    assert await shared.get_count("phantom:mallory") == 1

    shared.down = False
    timer.advance(FALLBACK_SECONDS)  # tried again; the lock made meanwhile still holds
    assert await phantoms.locked_until("mallory", T0) == T0 + 30
    assert await phantoms.record_failure("mallory", T0, POLICY) is None  # shared count: 2
    assert await shared.get_count("phantom:mallory") == 2


async def test_an_unreachable_redis_never_fails_a_login() -> None:
    down = RedisEphemeral("redis://127.0.0.1:1/0", prefix="tw-down")
    phantoms = PhantomLockouts(down, clock=FrozenClock(T0))
    try:
        assert [await phantoms.record_failure("mallory", T0, POLICY) for _ in range(3)] == [
            None,
            None,
            T0 + 30,
        ]
        assert await phantoms.locked_until("mallory", T0) == T0 + 30
    finally:
        await phantoms.close()
