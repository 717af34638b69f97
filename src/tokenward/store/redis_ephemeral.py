"""RedisEphemeral: the ephemeral state every node shares, on redis.asyncio.

Only ``open_ephemeral`` (store/ephemeral.py) imports this module, so the ``redis`` extra
is needed only where a Redis URL is configured. Everything lives under the prefix, so
deployments (and test runs) sharing one Redis never collide, and every key expires:

- ``{prefix}:deny:{jti}`` — the token's exp, expiring at it (PEXPIREAT);
- ``{prefix}:count:{key}`` — a counter, expiring ``ttl`` after its last INCR;
- ``{prefix}:lock:{key}`` — a lock time, expiring ``until - now`` after it is set;
- channel ``{prefix}:{channel}`` — pub/sub (channels are not keys, but share the prefix).

Calls are tried once with short socket timeouts and fail as StoreUnavailable, so a
caller (a login) decides what to do without waiting on a Redis that is down.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tokenward.errors import StoreUnavailable
from tokenward.store.ephemeral import Subscription

__all__ = ["RedisEphemeral"]

TIMEOUT = 0.5  # seconds; a login never waits on Redis longer than this (per call)
SCAN_PAGE = 1000  # keys per SCAN step and per MGET in denied()

# Keep the later of two times: a deny or a lock never shortens, whichever node writes
# last. ARGV: the time, then PXAT and when (deny: at the token's exp, by Redis's clock) or
# PX and for how long (lock). A time already past is not stored (SET PXAT deletes it).
_SET_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current and current >= tonumber(ARGV[1]) then return 0 end
if tonumber(ARGV[3]) <= 0 then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
"""


@contextmanager
def _surfaced() -> Iterator[None]:
    """Any Redis failure is StoreUnavailable, naming only the type (a Redis message can
    quote the URL, and the URL its password)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"Redis: {type(exc).__name__}") from None


def _ms(at: float) -> int:
    return math.ceil(at * 1000)  # round up: an entry never leaves before its time


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _client(url: str, *, connect: float, read: float | None) -> Any:
    return Redis.from_url(
        url,
        decode_responses=True,
        encoding_errors="surrogatepass",  # any str is a key: a username can be any JSON string
        socket_connect_timeout=connect,
        socket_timeout=read,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),  # one try: the caller falls back instead of waiting
        health_check_interval=15,  # a dead subscription is noticed by a failed PING
    )


class _RedisSubscription(Subscription):
    def __init__(self, client: Any, pubsub: Any) -> None:
        self._client, self._pubsub = client, pubsub
        self._closed = False

    async def get(self, timeout: float | None = None) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with _surfaced():
            while not self._closed:
                left = None if deadline is None else max(0.0, deadline - loop.time())
                message = await self._pubsub.get_message(timeout=left)
                if message is not None and message["type"] == "message":
                    return str(message["data"])
                if deadline is not None and loop.time() >= deadline:
                    return None
        return None

    async def close(self) -> None:
        self._closed = True
        try:
            await self._pubsub.aclose()
        finally:
            await self._client.aclose()


class RedisEphemeral:
    """The Ephemeral protocol on one Redis; times are epoch seconds, expiry by Redis's clock."""

    def __init__(self, url: str, *, prefix: str = "tokenward", timeout: float = TIMEOUT) -> None:
        self._url, self._prefix, self._timeout = url, prefix, timeout
        self._client: Any = _client(url, connect=timeout, read=timeout)
        self._set_max: Any = self._client.register_script(_SET_MAX)

    def __repr__(self) -> str:
        return f"RedisEphemeral(prefix={self._prefix!r})"  # never the URL: it may hold a password

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    # -- deny-list -------------------------------------------------------------------------
    async def deny(self, jti: str, exp: float) -> None:
        with _surfaced():
            await self._set_max(keys=[self._key("deny", jti)], args=[repr(exp), "PXAT", _ms(exp)])

    async def is_denied(self, jti: str, now: float) -> bool:
        with _surfaced():
            exp = await self._client.get(self._key("deny", jti))
        return exp is not None and now < float(exp)

    async def denied(self, now: float) -> list[tuple[str, float]]:
        start = len(self._key("deny", ""))
        pattern = _glob_escape(self._key("deny", "")) + "*"
        found: list[tuple[str, float]] = []
        with _surfaced():
            keys = [k async for k in self._client.scan_iter(match=pattern, count=SCAN_PAGE)]
            for i in range(0, len(keys), SCAN_PAGE):
                page = keys[i : i + SCAN_PAGE]
                values = await self._client.mget(page)
                found.extend(
                    (key[start:], float(exp))
                    for key, exp in zip(page, values, strict=True)
                    if exp is not None and now < float(exp)  # None: expired since the scan
                )
        return found

    # -- counters and locks ----------------------------------------------------------------
    async def incr(self, key: str, ttl: float) -> int:
        name = self._key("count", key)
        with _surfaced():
            async with self._client.pipeline(transaction=True) as pipe:  # MULTI/EXEC
                pipe.incr(name)
                pipe.pexpire(name, max(1, _ms(ttl)))
                count, _ = await pipe.execute()
        return int(count)

    async def get_count(self, key: str) -> int:
        with _surfaced():
            count = await self._client.get(self._key("count", key))
        return int(count) if count is not None else 0

    async def lock(self, key: str, until: float, now: float) -> None:
        args = [repr(until), "PX", _ms(until - now)]
        with _surfaced():
            await self._set_max(keys=[self._key("lock", key)], args=args)

    async def locked_until(self, key: str, now: float) -> float | None:
        with _surfaced():
            value = await self._client.get(self._key("lock", key))
        until = float(value) if value is not None else None
        return until if until is not None and now < until else None

    async def reset(self, key: str) -> None:
        with _surfaced():
            await self._client.delete(self._key("count", key), self._key("lock", key))

    # -- pub/sub, health -------------------------------------------------------------------
    async def publish(self, channel: str, message: str) -> None:
        with _surfaced():
            await self._client.publish(f"{self._prefix}:{channel}", message)

    async def subscribe(self, channel: str) -> Subscription:
        # a connection of its own with no read timeout: a quiet channel is not an error
        client = _client(self._url, connect=self._timeout, read=None)
        pubsub = client.pubsub()
        try:
            with _surfaced():  # (the timeout too: TimeoutError is an OSError)
                await pubsub.subscribe(f"{self._prefix}:{channel}")
                async with asyncio.timeout(self._timeout):  # the server's confirmation
                    while (await pubsub.get_message(timeout=None) or {}).get("type") != "subscribe":
                        pass
        except BaseException:
            await pubsub.aclose()
            await client.aclose()
            raise
        return _RedisSubscription(client, pubsub)

    async def ping(self) -> bool:
        try:
            with _surfaced():
                await self._client.ping()
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self._client.aclose()
