"""Ephemeral state: what may be lost without losing anything that matters.

DESIGN.md "Principles" 2: PostgreSQL keeps durable state, Redis the ephemeral state shared
by the nodes — deny-list entries until they expire, counters, lock times, pub/sub. Nothing
durable lives only here: the store keeps the deny-list too, counters restart, and pub/sub
is a fast path whose gaps are filled from the store (server/events.py).

``open_ephemeral(url)`` picks the backend from the URL scheme: ``memory://`` (this
process only) or ``redis://`` / ``rediss://`` / ``unix://`` (every node).

Expiry follows the backend's own clock (Redis's; the injected clock of MemoryEphemeral):
a deny entry leaves at the token's exp, and one already past when written is never
stored. Counters and locks expire after a duration instead (a lock's ``until - now``), so
a node whose clock is a little off, or a test's frozen clock, still locks for as long as
it meant to. Queries that take ``now`` also hide what has expired by the caller's clock.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Protocol, Self, TypeVar, runtime_checkable

from tokenward.clock import Clock, system_clock
from tokenward.errors import ConfigError, StoreUnavailable

__all__ = ["Ephemeral", "MemoryEphemeral", "Subscription", "open_ephemeral"]

MAX_KEYS = 10_000  # counters (and, apart, lock times) MemoryEphemeral keeps at most
MAX_QUEUED = 10_000  # messages a memory subscriber may fall behind by
V = TypeVar("V")


class Subscription(abc.ABC):
    """Messages of one channel, in publish order, from the moment ``subscribe`` returned."""

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> str | None:
        """The next message; None after ``timeout`` seconds (None: wait) or once closed.
        StoreUnavailable when the subscription broke: subscribe again and catch up."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@runtime_checkable
class Ephemeral(Protocol):
    """Shared, expiring state. Every method may raise StoreUnavailable (Redis down)."""

    # -- deny-list: a token id refused until its exp ---------------------------------------
    async def deny(self, jti: str, exp: float) -> None:
        """Deny ``jti`` until ``exp`` (a later exp wins; one already past is not stored)."""

    async def is_denied(self, jti: str, now: float) -> bool: ...

    async def denied(self, now: float) -> list[tuple[str, float]]:
        """Every live entry as (jti, exp), in no particular order."""

    # -- counters and lock times -----------------------------------------------------------
    async def incr(self, key: str, ttl: float) -> int:
        """Add one and return the new count (atomic across nodes). The counter is forgotten
        ``ttl`` seconds after its last increment."""

    async def get_count(self, key: str) -> int: ...

    async def lock(self, key: str, until: float, now: float) -> None:
        """Lock ``key`` until ``until``: kept ``until - now`` seconds, never shortened (of
        two nodes locking at once the later time wins), not stored if already past."""

    async def locked_until(self, key: str, now: float) -> float | None: ...

    async def reset(self, key: str) -> None:
        """Forget the counter and the lock kept under ``key``."""

    # -- pub/sub, health -------------------------------------------------------------------
    async def publish(self, channel: str, message: str) -> None: ...

    async def subscribe(self, channel: str) -> Subscription:
        """Returns once subscribed: every message published after it is delivered."""

    async def ping(self) -> bool:
        """True when reachable (as Store.ping: a health check never raises)."""

    async def close(self) -> None: ...


class _MemorySubscription(Subscription):
    def __init__(self, owner: MemoryEphemeral, channel: str, max_queued: int) -> None:
        self._owner, self._channel = owner, channel
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(max_queued)
        self.overflowed = self._closed = False

    def push(self, message: str) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            # like Redis's output-buffer limit: drop the reader, not the messages' order
            self.overflowed = True
            self._owner.unsubscribe(self._channel, self)

    async def get(self, timeout: float | None = None) -> str | None:
        if self.overflowed:
            raise StoreUnavailable("the subscriber fell behind and was dropped")
        if self._closed:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()  # None: closed while waiting
        except TimeoutError:
            return None

    async def close(self) -> None:
        self._closed = True
        self._owner.unsubscribe(self._channel, self)
        with contextlib.suppress(asyncio.QueueFull):  # full: nobody is waiting to be woken
            self._queue.put_nowait(None)


class MemoryEphemeral:
    """This process only (one node, tests). Bounded: deny entries leave at their exp,
    counters and locks at their expiry or, past ``max_keys`` each, oldest first."""

    def __init__(
        self, clock: Clock = system_clock, *, max_keys: int = MAX_KEYS, max_queued: int = MAX_QUEUED
    ) -> None:
        self._clock, self._max, self._max_queued = clock, max_keys, max_queued
        self._denied: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap; stale pairs are skipped
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()  # (count, expires)
        self._locks: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (until, expires)
        self._channels: dict[str, list[_MemorySubscription]] = {}

    def __len__(self) -> int:
        """Entries held (deny, counters, locks): the test of boundedness."""
        return len(self._denied) + len(self._counts) + len(self._locks)

    async def deny(self, jti: str, exp: float) -> None:
        self._purge()
        if exp <= self._clock() or exp <= self._denied.get(jti, exp - 1):
            return
        self._denied[jti] = exp
        heapq.heappush(self._expiries, (exp, jti))

    async def is_denied(self, jti: str, now: float) -> bool:
        return max(now, self._clock()) < self._denied.get(jti, 0.0)

    async def denied(self, now: float) -> list[tuple[str, float]]:
        self._purge()
        return [(jti, exp) for jti, exp in self._denied.items() if now < exp]

    def _purge(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            exp, jti = heapq.heappop(self._expiries)
            if self._denied.get(jti) == exp:  # not extended since
                del self._denied[jti]

    async def incr(self, key: str, ttl: float) -> int:
        now = self._clock()
        count = self._counts.pop(key, (0, now))
        new = (count[0] + 1 if now < count[1] else 1, now + ttl)
        self._counts[key] = new  # last touched last: the oldest go first
        _trim(self._counts, self._max, lambda v: v[1] <= now)
        return new[0]

    async def get_count(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if self._clock() < expires else 0

    async def lock(self, key: str, until: float, now: float) -> None:
        at = self._clock()
        held = self._locks.pop(key, None)
        if held is not None and (held[1] <= at or held[0] < until):
            held = None  # expired, or the new lock is later
        if held is None and until > now:
            held = (until, at + (until - now))
        if held is not None:
            self._locks[key] = held
        _trim(self._locks, self._max, lambda v: v[1] <= at)

    async def locked_until(self, key: str, now: float) -> float | None:
        until, expires = self._locks.get(key, (0.0, 0.0))
        return until if now < until and self._clock() < expires else None

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)
        self._locks.pop(key, None)

    async def publish(self, channel: str, message: str) -> None:
        for subscription in list(self._channels.get(channel, ())):
            subscription.push(message)

    async def subscribe(self, channel: str) -> Subscription:
        subscription = _MemorySubscription(self, channel, self._max_queued)
        self._channels.setdefault(channel, []).append(subscription)
        return subscription

    def unsubscribe(self, channel: str, subscription: _MemorySubscription) -> None:
        subscribers = self._channels.get(channel, [])
        if subscription in subscribers:
            subscribers.remove(subscription)
        if not subscribers:
            self._channels.pop(channel, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        for subscribers in list(self._channels.values()):
            for subscription in list(subscribers):
                await subscription.close()


def _trim(entries: OrderedDict[str, V], most: int, expired: Callable[[V], bool]) -> None:
    """Drop expired entries from the oldest end, then the oldest past ``most``."""
    while entries and (len(entries) > most or expired(next(iter(entries.values())))):
        entries.popitem(last=False)


# -- open by URL ---------------------------------------------------------------------------

EphemeralFactory = Callable[[str, str, Clock], Ephemeral]


def _memory(_url: str, _prefix: str, clock: Clock) -> Ephemeral:
    return MemoryEphemeral(clock)


def _redis(url: str, prefix: str, _clock: Clock) -> Ephemeral:
    from tokenward.store.redis_ephemeral import RedisEphemeral  # noqa: PLC0415 - optional extra

    return RedisEphemeral(url, prefix=prefix)  # Redis expires by its own clock


SCHEMES: Mapping[str, EphemeralFactory] = MappingProxyType(
    {"memory": _memory, "redis": _redis, "rediss": _redis, "unix": _redis}
)


def open_ephemeral(
    url: str,
    *,
    prefix: str = "tokenward",
    clock: Clock = system_clock,
    schemes: Mapping[str, EphemeralFactory] = SCHEMES,
) -> Ephemeral:
    """The Ephemeral for ``url``; ConfigError on an unknown scheme (the URL is not echoed:
    it may carry a password)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    factory = schemes.get(scheme)
    if factory is None:
        raise ConfigError(f"unsupported ephemeral URL scheme {scheme!r}; known: {sorted(schemes)}")
    return factory(url, prefix, clock)
