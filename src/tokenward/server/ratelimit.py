"""Rate limits with `limits` (moving window); memory storage here, Redis when configured.

With Redis every node counts against the same windows (SECURITY.md "Accounts": shared
across nodes). Redis being down must not stop logins: a failed call falls back to this
node's own memory windows for a while (still a limit, per node), then Redis is tried again.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from tokenward.errors import ConfigError, RateLimited

__all__ = ["Limiter", "SweptMemoryStorage"]

log = logging.getLogger("tokenward.server")
FALLBACK_SECONDS = 30.0  # how long to count locally after a Redis failure
REDIS_TIMEOUT = 0.5  # seconds; a login never waits on Redis longer than this


class SweptMemoryStorage(MemoryStorage):
    """limits' memory storage without a thread per request.

    ``MemoryStorage`` drops expired windows on a 10 ms ``threading.Timer`` and starts a
    new timer thread on the next hit once the last one fired: below ~100 hits/s, nearly
    every login or refresh started a thread (~1 ms here, docs/benchmarks.md). The windows
    are judged by time on every hit anyway; the sweep only frees memory, so here it runs
    inline, at most once per ``SWEEP_SECONDS``.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one timer the base class starts; never re-armed
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
            # limits empties an expired key's list but keeps the key: drop it too
            for key in [k for k, entries in self.events.items() if not entries]:
                del self.events[key]


def _storage(url: str, key_prefix: str) -> Storage:
    options: dict[str, float | str | bool] = {}
    if url.startswith(("redis", "rediss", "valkey")):
        options = {
            "key_prefix": key_prefix,
            "wrap_exceptions": True,  # every Redis failure is a StorageError
            "socket_timeout": REDIS_TIMEOUT,
            "socket_connect_timeout": REDIS_TIMEOUT,
        }
    storage = storage_from_string(url, **options)
    if not isinstance(storage, Storage):
        raise ConfigError("rate-limit storage must be a synchronous limits storage")
    return storage


def _hit(
    strategy: MovingWindowRateLimiter, item: RateLimitItem, name: str, key: str
) -> float | None:
    """None when the hit is allowed, else when the window frees a slot (epoch seconds)."""
    if strategy.hit(item, name, key):
        return None
    return float(strategy.get_window_stats(item, name, key).reset_time)


class Limiter:
    """Named limits ("login:ip" -> "20/minute"); ``hit`` raises RateLimited with Retry-After."""

    def __init__(
        self, limits: dict[str, str], storage_url: str = "", *, key_prefix: str = "LIMITS"
    ) -> None:
        self._storage: Storage = (
            _storage(storage_url, key_prefix) if storage_url else SweptMemoryStorage()
        )
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._local = MovingWindowRateLimiter(SweptMemoryStorage())
        self._shared_down_until = 0.0
        self._items: dict[str, RateLimitItem] = {name: parse(spec) for name, spec in limits.items()}

    def hit(self, name: str, key: str) -> None:
        item = self._items[name]
        shared = time.monotonic() >= self._shared_down_until
        try:
            reset_at = _hit(self._strategy if shared else self._local, item, name, key)
        except StorageError as exc:
            self._shared_down_until = time.monotonic() + FALLBACK_SECONDS
            log.warning("rate-limit storage failed (%s); counting locally", type(exc).__name__)
            reset_at = _hit(self._local, item, name, key)
        if reset_at is not None:
            raise RateLimited("too many requests", retry_after=reset_at - time.time())

    def reset(self) -> None:
        self._storage.reset()
        self._local.storage.reset()
