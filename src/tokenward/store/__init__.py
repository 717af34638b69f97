"""Durable state behind the :class:`~tokenward.store.base.Store` protocol.

``open_store(url)`` picks the backend from the URL scheme through a registry:

- ``memory://`` — in-process dicts (tests, the dev profile);
- ``sqlite:///path/tokenward.db`` — one file, one machine (stdlib driver, transactions
  in threads of the store's own; ``sqlite+aiosqlite://`` URLs of earlier versions work);
- ``postgresql://`` / ``postgresql+asyncpg://`` (or ``postgres://``) — many nodes; the
  driver is always asyncpg.

The SQL backend is imported only when asked for, so memory-only users need no
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from tokenward.errors import ConfigError
from tokenward.store.base import (
    AuditEvent,
    Client,
    Family,
    RefreshState,
    RefreshToken,
    RotateOutcome,
    RotateResult,
    Store,
    User,
)
from tokenward.store.memory import MemoryStore

__all__ = [
    "SCHEMES",
    "AuditEvent",
    "Client",
    "Family",
    "MemoryStore",
    "RefreshState",
    "RefreshToken",
    "RotateOutcome",
    "RotateResult",
    "Store",
    "User",
    "open_store",
]

StoreFactory = Callable[[str], Store]


def _memory(_url: str) -> Store:
    return MemoryStore()


def _sql(url: str) -> Store:
    from tokenward.store.sql import SQLStore  # noqa: PLC0415 - keeps SQLAlchemy optional

    return SQLStore(url)  # SQLStore normalises the scheme to its async driver


# Read-only: a registry built once; callers wanting another backend pass their own.
SCHEMES: Mapping[str, StoreFactory] = MappingProxyType(
    {
        "memory": _memory,
        "sqlite": _sql,
        "sqlite+pysqlite": _sql,
        "sqlite+aiosqlite": _sql,
        "postgres": _sql,
        "postgresql": _sql,
        "postgresql+asyncpg": _sql,
    }
)


def open_store(url: str, *, schemes: Mapping[str, StoreFactory] = SCHEMES) -> Store:
    """The Store for ``url``; ConfigError on an unknown scheme (the URL is not echoed:
    it may carry a password)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    factory = schemes.get(scheme)
    if factory is None:
        raise ConfigError(f"unsupported store URL scheme {scheme!r}; known: {sorted(schemes)}")
    return factory(url)
