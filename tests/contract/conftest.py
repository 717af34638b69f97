"""One Store contract, run against every backend: memory, SQLite and PostgreSQL.

PostgreSQL runs when TOKENWARD_TEST_POSTGRES_URL names a server (its database is used
only to connect): each test session creates a database of its own there and drops it
at the end, and each test gets a fresh schema in it, so runs and tests never collide.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tokenward.store import MemoryStore
from tokenward.store.base import Store
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
