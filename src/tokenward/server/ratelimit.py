"""Rate limits with `limits` (moving window); memory storage here, Redis when configured."""

from __future__ import annotations

import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from tokenward.errors import ConfigError, RateLimited

__all__ = ["Limiter"]


class Limiter:
    """Named limits ("login:ip" -> "20/minute"); ``hit`` raises RateLimited with Retry-After."""

    def __init__(self, limits: dict[str, str], storage_url: str = "") -> None:
        storage = storage_from_string(storage_url) if storage_url else MemoryStorage()
        if not isinstance(storage, Storage):
            raise ConfigError("rate-limit storage must be a synchronous limits storage")
        self._storage: Storage = storage
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, RateLimitItem] = {name: parse(spec) for name, spec in limits.items()}

    def hit(self, name: str, key: str) -> None:
        item = self._items[name]
        if not self._strategy.hit(item, name, key):
            stats = self._strategy.get_window_stats(item, name, key)
            raise RateLimited("too many requests", retry_after=stats.reset_time - time.time())

    def reset(self) -> None:
        self._storage.reset()
