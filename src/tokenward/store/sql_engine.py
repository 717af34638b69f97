"""Engine creation and the few places where SQLite and PostgreSQL differ.

Everything else in the SQL store is one code path (sync functions over a connection, run
by a :mod:`~tokenward.store.sql_runner`); the differences live in the ``DIALECTS``
registry below, keyed by SQLAlchemy's backend name.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine

from tokenward.errors import ConfigError
from tokenward.store.sql_runner import WRITE, AsyncRunner, Runner, ThreadRunner, driver_sql

__all__ = ["DIALECTS", "WRITE", "Dialect", "normalise_url", "open_engine"]

# The driver for each accepted URL scheme: one driver per engine, so the store has one
# behaviour to test (e.g. ``postgresql://`` would otherwise pick psycopg2). SQLite runs on
# the stdlib driver in threads of its own (sql_runner); ``sqlite+aiosqlite`` URLs from
# earlier versions keep working.
DRIVERS: Mapping[str, str] = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# WAL lets readers proceed while one connection writes; busy_timeout makes a writer in
# another process (the CLI, a second server) wait for the lock instead of failing with
# "database is locked"; foreign keys are off by default in SQLite, on in PostgreSQL.
# busy_timeout comes first; then _use_wal switches a fresh file to WAL.
SQLITE_BUSY_SECONDS = 5.0
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}",
    "PRAGMA foreign_keys=ON",
)

# Any fixed 64-bit number, the same in every process: the key of the advisory lock
# that stops two nodes starting at once from running the migrations twice.
PG_MIGRATION_LOCK = 0x746F6B656E777264  # b"tokenwrd", below 2**63 as bigint needs


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _use_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # The driver's own BEGIN is off (isolation_level=None) so that SELECTs are
        # transactional too. A writer takes the write lock up front (IMMEDIATE): a
        # deferred transaction that reads and then writes could find its snapshot stale
        # and fail with SQLITE_BUSY at once, which busy_timeout does not retry.
        # Straight on the driver: through exec_driver_sql a BEGIN cost more than the
        # statements of a rotation (sql_prepared.py). pysqlite raises its own errors here,
        # which the runner's callers see as they would a failed BEGIN anywhere.
        write = connection.get_execution_options().get(WRITE, False)
        driver_sql(connection, "BEGIN IMMEDIATE" if write else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch a fresh file to WAL. Switching needs an exclusive lock, and SQLite answers
    "database is locked" at once, without its busy handler, when waiting could deadlock
    (another connection of a process starting beside this one holds the write lock). So
    the mode is read first (a file already in WAL needs nothing) and the switch retried
    until the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # the runner's thread, never the event loop


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
    # the engine and the runner of its transactions (sql_runner says why they differ)
    open: Callable[[URL, Mapping[str, Any]], Runner]
    migration_lock: Callable[[Connection], None]


def _open_sqlite(url: URL, connect_args: Mapping[str, Any]) -> Runner:
    engine = sa.create_engine(
        url,
        # we emit BEGIN ourselves (_on_begin); each runner thread keeps its connection
        connect_args={"isolation_level": None, "check_same_thread": False, **connect_args},
        hide_parameters=True,  # keeps bound values (hashes) out of exception messages
    )
    _prepare_sqlite(engine)
    return ThreadRunner(engine)


def _open_postgresql(url: URL, connect_args: Mapping[str, Any]) -> Runner:
    engine = create_async_engine(
        url,
        connect_args=dict(connect_args),
        hide_parameters=True,
        pool_pre_ping=True,  # a pooled connection may have died with a server restart
    )
    return AsyncRunner(engine)


DIALECTS: Mapping[str, Dialect] = {
    "sqlite": Dialect(insert=sqlite.insert, open=_open_sqlite, migration_lock=_no_migration_lock),
    "postgresql": Dialect(
        insert=postgresql.insert, open=_open_postgresql, migration_lock=_pg_migration_lock
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


def open_engine(url: str, connect_args: Mapping[str, Any] | None = None) -> tuple[Runner, Dialect]:
    parsed = normalise_url(url)
    dialect = DIALECTS[parsed.get_backend_name()]
    return dialect.open(parsed, connect_args or {}), dialect
