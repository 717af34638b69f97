"""One Store contract, run against every backend: memory, SQLite and PostgreSQL; and one
Ephemeral contract against memory and Redis (TOKENWARD_TEST_REDIS_URL; a key prefix per test).

PostgreSQL runs when TOKENWARD_TEST_POSTGRES_URL names a server (its database is used
only to connect): each test session creates a database of its own there and drops it
at the end, and each test gets a fresh schema in it, so runs and tests never collide.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from tokenward import FrozenClock
from tokenward.store import MemoryStore
from tokenward.store.base import Store
from tokenward.store.ephemeral import Ephemeral, MemoryEphemeral
from tokenward.store.redis_ephemeral import RedisEphemeral
from tokenward.store.sql import SQLStore

PG_ENV = "TOKENWARD_TEST_POSTGRES_URL"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_apart(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run set-up SQL on a loop of its own, in a thread, clear of the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this test session's own on the PostgreSQL server, dropped at the end."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL backend: set {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    name = f"tokenward_test_{uuid.uuid4().hex[:16]}"
    run_apart(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield _asyncpg_dsn(base, name)
    finally:
        run_apart(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Backend:
    """How to open (another) Store on one test's database."""

    name: str
    url: str | None = None  # None: in-memory
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    memory: MemoryStore | None = None

    def open(self) -> Store:
        if self.memory is not None:
            return self.memory
        assert self.url is not None
        return SQLStore(self.url, connect_args=self.connect_args)


def _memory(_request: pytest.FixtureRequest, _tmp_path: Path) -> Backend:
    return Backend("memory", memory=MemoryStore())


def _sqlite(_request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend("sqlite", url=f"sqlite:///{tmp_path / 'tokenward.db'}")


def _postgresql(request: pytest.FixtureRequest, _tmp_path: Path) -> Backend:
    url = request.getfixturevalue("pg_url")  # skips when the server is not configured
    schema = f"t_{uuid.uuid4().hex[:16]}"
    run_apart(_admin(url, f'CREATE SCHEMA "{schema}"'))
    # search_path puts every table (and Alembic's version table) in this test's schema
    return Backend("postgresql", url=url, connect_args={"server_settings": {"search_path": schema}})


BACKENDS: Mapping[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = backend.open()
    await opened.migrate()
    yield opened
    await opened.close()


# -- the Ephemeral contract (store/ephemeral.py): memory and Redis ---------------------------

REDIS_ENV = "TOKENWARD_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis backend: set {REDIS_ENV} (e.g. redis://127.0.0.1:6379/0)")
    return url


@dataclass
class EphemeralBackend:
    """Opens Ephemerals as the nodes of one deployment would: each ``open()`` is a node.

    Memory is per node (nothing shared) and expires by ``clock``, which tests may advance;
    Redis is shared by every node of the prefix and expires by its own clock (real time).
    """

    name: str
    clock: Callable[[], float]
    url: str | None = None  # None: in-memory
    prefix: str = ""
    opened: list[Ephemeral] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return self.url is not None

    def open(self, **options: Any) -> Ephemeral:
        made: Ephemeral
        if self.url is None:
            assert isinstance(self.clock, FrozenClock)
            made = MemoryEphemeral(self.clock, **options)
        else:
            made = RedisEphemeral(self.url, prefix=self.prefix, **options)
        self.opened.append(made)
        return made


async def delete_prefix(url: str, prefix: str) -> None:
    """Remove every Redis key under ``prefix`` (what one test or run created)."""
    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _ephemeral_backend(
    kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[EphemeralBackend]:
    if kind == "memory":
        backend = EphemeralBackend("memory", FrozenClock(1_700_000_000.0))
    else:
        url = request.getfixturevalue("redis_url")  # skips when Redis is not configured
        prefix = f"tw-test-{uuid.uuid4().hex[:12]}"  # no two tests (or runs) share a key
        backend = EphemeralBackend("redis", time.time, url=url, prefix=prefix)
    yield backend
    for opened in backend.opened:
        await opened.close()
    if backend.url is not None:
        await delete_prefix(backend.url, backend.prefix)


@pytest.fixture(params=["memory", "redis"])
async def ephemeral_backend(request: pytest.FixtureRequest) -> AsyncIterator[EphemeralBackend]:
    async for backend in _ephemeral_backend(request.param, request):
        yield backend


@pytest.fixture
async def redis_backend(request: pytest.FixtureRequest) -> AsyncIterator[EphemeralBackend]:
    """For what only Redis shows (its expiry times, its keys)."""
    async for backend in _ephemeral_backend("redis", request):
        yield backend


@pytest.fixture
def ephemeral(ephemeral_backend: EphemeralBackend) -> Ephemeral:
    return ephemeral_backend.open()
