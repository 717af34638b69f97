"""The Ephemeral contract (store/ephemeral.py), part 1: the deny-list, counters, locks and
their bounds. Every contract test runs on memory and on Redis (part 2: test_ephemeral_nodes.py).

Times are passed in, never waited for. Memory expires by a FrozenClock the tests advance;
Redis by its own clock, so there entries are written far ahead of now (live) or already
past (never stored), and its expiry is read back with PEXPIRETIME / PTTL.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from redis.asyncio import Redis

from tests.contract.conftest import EphemeralBackend
from tokenward import FrozenClock
from tokenward.store.ephemeral import Ephemeral, MemoryEphemeral
from tokenward.store.redis_ephemeral import RedisEphemeral

pytestmark = pytest.mark.anyio
HOUR = 3600.0
T0 = 1_700_000_000.0  # a test clock long past: Redis must lock by duration, not by date


def nodes(backend: EphemeralBackend, first: Ephemeral) -> tuple[Ephemeral, Ephemeral]:
    """Two nodes of one deployment: on Redis two clients, in memory one process's state."""
    return (first, backend.open()) if backend.shared else (first, first)


async def raw(backend: EphemeralBackend) -> Redis:
    assert backend.url is not None
    return Redis.from_url(backend.url, decode_responses=True)


async def test_implements_the_protocol(ephemeral: Ephemeral) -> None:
    assert isinstance(ephemeral, Ephemeral)
    assert await ephemeral.ping() is True


# -- deny-list ------------------------------------------------------------------------------


async def test_a_denied_jti_is_denied_until_its_exp(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    exp = now + HOUR + 0.125  # a float with a fraction comes back exactly
    await ephemeral.deny("jti-1", exp)
    assert await ephemeral.is_denied("jti-1", now) is True
    assert await ephemeral.is_denied("jti-2", now) is False
    assert await ephemeral.denied(now) == [("jti-1", exp)]
    # by the caller's clock the entry is gone from its exp on
    assert await ephemeral.is_denied("jti-1", exp) is False
    assert await ephemeral.denied(exp) == []


async def test_an_exp_already_past_is_not_stored(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    await ephemeral.deny("old", now - 10)
    # asked with an earlier clock, a stored entry would still show: it was never stored
    assert await ephemeral.is_denied("old", now - 20) is False
    assert await ephemeral.denied(now - 20) == []


async def test_a_later_exp_wins_and_an_earlier_never_shortens(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    first, second = nodes(ephemeral_backend, ephemeral)
    await first.deny("j", now + 2 * HOUR)
    await second.deny("j", now + HOUR)
    assert await first.denied(now) == [("j", now + 2 * HOUR)]
    await second.deny("j", now + 3 * HOUR)
    assert await first.denied(now) == [("j", now + 3 * HOUR)]


async def test_denied_lists_every_live_entry(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    live = {f"jti-{i}": now + HOUR + i for i in range(2500)}  # more than one SCAN page
    live.update({"*": now + HOUR, "[a-z]?": now + HOUR, "\ud800": now + HOUR})  # any string
    for jti, exp in live.items():
        await ephemeral.deny(jti, exp)
    await ephemeral.deny("gone", now - 1)
    listed = await ephemeral.denied(now)
    assert len(listed) == len(live) and dict(listed) == live
    later = now + HOUR + 2000  # the caller's clock hides what expired by it
    assert dict(await ephemeral.denied(later)) == {j: e for j, e in live.items() if e > later}


async def test_memory_deny_entries_vanish_at_their_exp() -> None:
    clock = FrozenClock(T0)
    memory = MemoryEphemeral(clock)
    await memory.deny("past", T0)
    assert len(memory) == 0  # not even kept until the next purge
    for i in range(1000):
        await memory.deny(f"j{i}", T0 + 1 + i)
    await memory.deny("extended", T0 + 10)
    await memory.deny("extended", T0 + 5000)  # its first heap entry is stale now
    assert len(memory) == 1001
    clock.now = T0 + 2000
    await memory.deny("new", T0 + 3000)
    assert len(memory) == 2  # the expired thousand are gone, not just hidden
    assert sorted(j for j, _ in await memory.denied(clock.now)) == ["extended", "new"]
    assert await memory.is_denied("j5", T0) is False  # by the store's clock, too


async def test_redis_deny_entries_expire_with_the_token(redis_backend: EphemeralBackend) -> None:
    ephemeral = redis_backend.open()
    exp = redis_backend.clock() + HOUR + 0.0004
    await ephemeral.deny("j", exp)
    client = await raw(redis_backend)
    try:
        key = f"{redis_backend.prefix}:deny:j"
        assert await client.execute_command("PEXPIRETIME", key) == math.ceil(exp * 1000)
    finally:
        await client.aclose()


# -- counters ---------------------------------------------------------------------------------


async def test_counters_count_and_reset(ephemeral: Ephemeral) -> None:
    assert [await ephemeral.incr("k", HOUR) for _ in range(3)] == [1, 2, 3]
    assert await ephemeral.get_count("k") == 3
    assert await ephemeral.get_count("other") == 0
    await ephemeral.reset("k")
    assert await ephemeral.get_count("k") == 0
    assert await ephemeral.incr("k", HOUR) == 1


async def test_concurrent_increments_are_exact(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    """Many tasks on two nodes: every increment counts once and sees its own count."""
    first, second = nodes(ephemeral_backend, ephemeral)

    async def worker(node: Ephemeral) -> list[int]:
        return [await node.incr("hot", HOUR) for _ in range(8)]

    results = await asyncio.gather(*(worker(n) for _ in range(25) for n in (first, second)))
    seen = sorted(c for counts in results for c in counts)
    assert seen == list(range(1, 401))  # no lost update, no count returned twice
    assert await second.get_count("hot") == 400


async def test_memory_counters_expire_ttl_after_the_last_increment() -> None:
    clock = FrozenClock(T0)
    memory = MemoryEphemeral(clock)
    await memory.incr("k", 60)
    clock.now += 59
    assert await memory.incr("k", 60) == 2  # each increment starts the ttl again
    clock.now += 59
    assert await memory.get_count("k") == 2
    clock.now += 1
    assert await memory.get_count("k") == 0
    assert await memory.incr("k", 60) == 1


async def test_redis_counters_expire(redis_backend: EphemeralBackend) -> None:
    ephemeral = redis_backend.open()
    await ephemeral.incr("k", 100)
    client = await raw(redis_backend)
    try:
        ttl = await client.pttl(f"{redis_backend.prefix}:count:k")
    finally:
        await client.aclose()
    assert 0 < ttl <= 100_000


# -- locks ------------------------------------------------------------------------------------


async def test_a_lock_holds_until_its_time(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    await ephemeral.lock("k", now + 30, now)
    assert await ephemeral.locked_until("k", now) == now + 30
    assert await ephemeral.locked_until("k", now + 29.9) == now + 30
    assert await ephemeral.locked_until("k", now + 30) is None
    assert await ephemeral.locked_until("other", now) is None


async def test_a_lock_is_never_shortened(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    first, second = nodes(ephemeral_backend, ephemeral)
    await first.lock("k", now + 60, now)
    await second.lock("k", now + 30, now)
    assert await first.locked_until("k", now) == now + 60
    await second.lock("k", now + 90, now)
    assert await first.locked_until("k", now) == now + 90


async def test_a_lock_already_past_is_not_stored(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    await ephemeral.lock("k", now - 1, now)
    await ephemeral.lock("k", now, now)
    assert await ephemeral.locked_until("k", now - 100) is None


async def test_a_lock_lasts_its_duration_whatever_the_callers_date(ephemeral: Ephemeral) -> None:
    """A caller whose clock is off (here: years behind Redis) still locks for 30 s."""
    await ephemeral.lock("k", T0 + 30, T0)
    assert await ephemeral.locked_until("k", T0) == T0 + 30


async def test_memory_locks_expire_by_its_clock() -> None:
    clock = FrozenClock(T0)
    memory = MemoryEphemeral(clock)
    await memory.lock("k", T0 + 30, T0)
    clock.now = T0 + 30
    assert await memory.locked_until("k", T0) is None  # the caller's stale clock is no help
    await memory.lock("k2", T0 + 100, T0 + 30)
    assert len(memory) == 1  # the expired lock is gone


async def test_reset_clears_the_count_and_the_lock(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    now = ephemeral_backend.clock()
    await ephemeral.incr("k", HOUR)
    await ephemeral.lock("k", now + 30, now)
    await ephemeral.reset("k")
    assert await ephemeral.get_count("k") == 0
    assert await ephemeral.locked_until("k", now) is None


# -- bounded ----------------------------------------------------------------------------------


async def test_memory_counters_and_locks_are_bounded() -> None:
    memory = MemoryEphemeral(FrozenClock(T0), max_keys=100)
    for i in range(1000):
        await memory.incr(f"name{i}", HOUR)
        await memory.lock(f"name{i}", T0 + HOUR, T0)
    assert len(memory) == 200  # 100 counters and 100 locks: the newest
    assert await memory.get_count("name999") == 1 and await memory.get_count("name899") == 0
    assert await memory.locked_until("name999", T0) == T0 + HOUR
    assert await memory.locked_until("name0", T0) is None


async def test_every_redis_key_expires_and_stays_under_the_prefix(
    redis_backend: EphemeralBackend,
) -> None:
    ephemeral = redis_backend.open()
    now = redis_backend.clock()
    await ephemeral.deny("j", now + HOUR)
    await ephemeral.incr("c", HOUR)
    await ephemeral.lock("l", now + HOUR, now)
    client = await raw(redis_backend)
    try:
        keys = sorted([k async for k in client.scan_iter(match=f"{redis_backend.prefix}:*")])
        assert [k.removeprefix(redis_backend.prefix) for k in keys] == [
            ":count:c",
            ":deny:j",
            ":lock:l",
        ]
        ttls = [await client.pttl(k) for k in keys]
        assert all(ttl > 0 for ttl in ttls), ttls  # nothing lives forever in Redis
    finally:
        await client.aclose()


async def test_prefixes_keep_deployments_apart(redis_backend: EphemeralBackend) -> None:
    assert redis_backend.url is not None
    now = redis_backend.clock()
    ours = redis_backend.open()
    other_prefix = f"{redis_backend.prefix}-other"
    theirs = RedisEphemeral(redis_backend.url, prefix=other_prefix)
    try:
        await ours.deny("j", now + HOUR)
        await ours.incr("c", HOUR)
        assert await theirs.is_denied("j", now) is False
        assert await theirs.get_count("c") == 0
        assert await theirs.denied(now) == []
    finally:
        await theirs.close()
