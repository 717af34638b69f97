"""Engine creation and the few places where SQLite and PostgreSQL differ.

Everything else in the SQL store is one code path; the differences live in the
``DIALECTS`` registry below, keyed by SQLAlchemy's backend name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokenward.errors import ConfigError

__all__ = ["DIALECTS", "WRITE", "Dialect", "normalise_url", "open_engine"]

# The async driver for each accepted URL scheme: one driver per engine, so the store has
# one behaviour to test (e.g. ``postgresql://`` would otherwise pick psycopg2, sync).
DRIVERS: Mapping[str, str] = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# Execution option marking a connection that will write (see the SQLite begin hook).
WRITE = "tokenward_write"

# WAL lets readers proceed while one connection writes; busy_timeout makes a writer in
# another process (the CLI, a second server) wait for the lock instead of failing with
# "database is locked"; foreign keys are off by default in SQLite, on in PostgreSQL.
# busy_timeout comes first so that switching to WAL already waits on a busy file.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
)

# Any fixed 64-bit number, the same in every process: the key of the advisory lock
# that stops two nodes starting at once from running the migrations twice.
PG_MIGRATION_LOCK = 0x746F6B656E777264  # b"tokenwrd", below 2**63 as bigint needs


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # The driver's own BEGIN is off (isolation_level=None) so that SELECTs are
        # transactional too. A writer takes the write lock up front (IMMEDIATE): a
        # deferred transaction that reads and then writes could find its snapshot stale
        # and fail with SQLITE_BUSY at once, which busy_timeout does not retry.
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _no_setup(_engine: AsyncEngine) -> None:
    return None


def _pg_migration_lock(connection: Connection) -> None:
    # held to the end of the transaction; a second node waits, then finds head applied
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_MIGRATION_LOCK)))


def _no_migration_lock(_connection: Connection) -> None:
    return None  # SQLite: BEGIN IMMEDIATE already excludes every other writer


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines the SQL store supports."""

    # INSERT that knows ON CONFLICT (both dialects spell it the same; the class differs)
    insert: Callable[[sa.Table], Any]
    # SQLite has one writer per file: queue this process's writers on an asyncio.Lock
    # instead of letting them spin on busy_timeout. PostgreSQL serialises on row locks.
    serialize_writes: bool
    prepare: Callable[[AsyncEngine], None]
    migration_lock: Callable[[Connection], None]
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    def writer(self) -> AbstractAsyncContextManager[Any]:
        return asyncio.Lock() if self.serialize_writes else contextlib.nullcontext()


DIALECTS: Mapping[str, Dialect] = {
    "sqlite": Dialect(
        insert=sqlite.insert,
        serialize_writes=True,
        prepare=_prepare_sqlite,
        migration_lock=_no_migration_lock,
        connect_args={"isolation_level": None},  # we emit BEGIN ourselves (_on_begin)
    ),
    "postgresql": Dialect(
        insert=postgresql.insert,
        serialize_writes=False,
        prepare=_no_setup,
        migration_lock=_pg_migration_lock,
        # a pooled connection may have died with a server restart or failover
        engine_options={"pool_pre_ping": True},
    ),
}


def normalise_url(url: str) -> URL:
    """The URL with its async driver; ConfigError (without the URL: it may hold a password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("the database URL is malformed") from None
    driver = DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(f"unsupported database scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver)


def open_engine(
    url: str, connect_args: Mapping[str, Any] | None = None
) -> tuple[AsyncEngine, Dialect]:
    parsed = normalise_url(url)
    dialect = DIALECTS[parsed.get_backend_name()]
    engine = create_async_engine(
        parsed,
        connect_args={**dialect.connect_args, **(connect_args or {})},
        # keeps bound values (password hashes, token hashes) out of exception messages
        hide_parameters=True,
        **dialect.engine_options,
    )
    dialect.prepare(engine)
    return engine, dialect
