"""The Ephemeral contract, part 2: pub/sub, Redis down, opening by URL, and the server's
rate limiter on two nodes. Every Ephemeral test runs on memory and on Redis.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.contract.conftest import EphemeralBackend
from tests.contract.test_ephemeral import T0, nodes
from tokenward import FrozenClock
from tokenward.errors import ConfigError, RateLimited, StoreUnavailable
from tokenward.server.ratelimit import Limiter
from tokenward.store.ephemeral import Ephemeral, MemoryEphemeral, open_ephemeral
from tokenward.store.redis_ephemeral import RedisEphemeral

pytestmark = pytest.mark.anyio
DEADLOCK_GUARD = 30.0  # seconds; only so a lost message fails instead of hanging


# -- pub/sub ----------------------------------------------------------------------------------


async def test_pubsub_delivers_every_message_in_order(
    ephemeral_backend: EphemeralBackend, ephemeral: Ephemeral
) -> None:
    publisher, listener = nodes(ephemeral_backend, ephemeral)
    first = await listener.subscribe("events")
    second = await publisher.subscribe("events")
    sent = [f"message {i}" for i in range(200)]
    for message in sent:
        await publisher.publish("events", message)
    async with asyncio.timeout(DEADLOCK_GUARD), first, second:
        assert [await first.get() for _ in sent] == sent
        assert [await second.get() for _ in sent] == sent


async def test_only_what_follows_the_subscription_on_that_channel(ephemeral: Ephemeral) -> None:
    await ephemeral.publish("events", "before")
    async with await ephemeral.subscribe("events") as subscription:
        await ephemeral.publish("elsewhere", "other channel")
        await ephemeral.publish("events", "after")
        async with asyncio.timeout(DEADLOCK_GUARD):
            assert await subscription.get() == "after"
        assert await subscription.get(timeout=0) is None


async def test_a_closed_subscription_ends_iteration(ephemeral: Ephemeral) -> None:
    subscription = await ephemeral.subscribe("events")
    await ephemeral.publish("events", "one")
    received = []
    async with asyncio.timeout(DEADLOCK_GUARD):
        async for message in subscription:
            received.append(message)
            await subscription.close()
    assert received == ["one"]
    assert await subscription.get() is None
    await ephemeral.publish("events", "unheard")  # nobody listens: no error


async def test_memory_drops_a_subscriber_that_falls_behind() -> None:
    memory = MemoryEphemeral(FrozenClock(T0), max_queued=10)
    slow, fast = await memory.subscribe("c"), await memory.subscribe("c")
    for i in range(11):
        await memory.publish("c", str(i))
        assert await fast.get() == str(i)
    with pytest.raises(StoreUnavailable):
        await slow.get()  # dropped, like Redis drops a reader past its buffer: resubscribe
    await memory.publish("c", "more")
    assert await fast.get() == "more"


# -- failures and opening -----------------------------------------------------------------


async def test_redis_down_is_store_unavailable_without_the_url() -> None:
    down = RedisEphemeral("redis://:s3cret-password@127.0.0.1:1/0", prefix="tw-down")
    try:
        assert await down.ping() is False
        calls = [
            down.deny("j", T0),
            down.is_denied("j", T0),
            down.denied(T0),
            down.incr("c", 1),
            down.get_count("c"),
            down.lock("l", T0 + 1, T0),
            down.locked_until("l", T0),
            down.reset("c"),
            down.publish("c", "m"),
            down.subscribe("c"),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable) as caught:
                await call
            assert "s3cret" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
        assert "s3cret" not in repr(down)
    finally:
        await down.close()


async def test_open_ephemeral_by_scheme() -> None:
    assert isinstance(open_ephemeral("memory://"), MemoryEphemeral)
    opened = open_ephemeral("redis://:pw@127.0.0.1:1/0", prefix="p")
    assert isinstance(opened, RedisEphemeral) and isinstance(opened, Ephemeral)
    await opened.close()
    for url in ("memcached://user:pw@host", "", "127.0.0.1:6379"):
        with pytest.raises(ConfigError) as caught:
            open_ephemeral(url)
        assert "pw" not in str(caught.value)


# -- the server's rate limiter: one window per deployment on Redis ----------------------------


@pytest.mark.parametrize("on_redis", [False, True], ids=["memory", "redis"])
def test_two_limiters_share_windows_only_on_redis(
    request: pytest.FixtureRequest, on_redis: bool
) -> None:
    url = request.getfixturevalue("redis_url") if on_redis else ""
    prefix = f"tw-test-{uuid.uuid4().hex[:12]}:limits"
    a, b = (Limiter({"login:ip": "3/minute"}, url, key_prefix=prefix) for _ in range(2))
    try:
        a.hit("login:ip", "198.51.100.1")
        a.hit("login:ip", "198.51.100.1")
        b.hit("login:ip", "198.51.100.1")  # the third of three
        if on_redis:  # one window for both nodes: the fourth is refused on either
            for node in (a, b):
                with pytest.raises(RateLimited):
                    node.hit("login:ip", "198.51.100.1")
        else:  # each node counts alone: b has two hits left
            b.hit("login:ip", "198.51.100.1")
            b.hit("login:ip", "198.51.100.1")
            with pytest.raises(RateLimited):
                b.hit("login:ip", "198.51.100.1")
        a.hit("login:ip", "198.51.100.2")  # another IP, another window
    finally:
        a.reset()  # on Redis: deletes the prefix's keys
        b.reset()
