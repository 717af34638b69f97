"""SQLite point reads (sql_runner._Reader.inline): on the caller's thread, never waiting there.

A lookup by key runs on the event loop's thread on a connection of its own, opened by the
reader thread; whatever must wait for a lock (SQLite busy, a connection not open yet,
another thread) goes to the reader thread, and the loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from tests.contract.records import user
from tokenward.store.sql import SQLStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    sql = SQLStore(f"sqlite:///{tmp_path / 'point.db'}")
    await sql.migrate()
    await sql.add_user(user(1))
    yield sql
    await sql.close()


def one(calls: list[int]) -> Any:
    def work(conn: Connection) -> Any:
        calls.append(threading.get_ident())
        return conn.execute(sa.select(sa.literal(1))).scalar()

    return work


def sqlite_error(code: int) -> OperationalError:
    orig = sqlite3.OperationalError("database is locked" if code == sqlite3.SQLITE_BUSY else "x")
    orig.sqlite_errorcode = code  # type: ignore[attr-defined]
    return OperationalError("SELECT 1", {}, orig)


async def test_point_reads_run_on_the_callers_thread(store: SQLStore) -> None:
    runner, here, calls = store._runner, threading.get_ident(), []
    assert await runner.read(one(calls)) == 1  # the reader thread; it opens the inline one
    assert await runner.read(one(calls), point=True) == 1
    assert await runner.read(one(calls)) == 1
    assert calls[0] != here and calls[1] == here and calls[2] == calls[0]
    # the store's lookups take that path: a user by id and by name
    found = await store.get_user("u1")
    assert found is not None and found == await store.get_user_by_name(found.username)


async def test_a_point_read_is_one_statement_and_leaves_no_transaction(store: SQLStore) -> None:
    runner = store._runner
    await runner.read(one([]))  # the reader thread opens the inline connection
    conn = runner._reader._inline  # type: ignore[attr-defined]
    statements: list[str] = []
    conn.connection.dbapi_connection.set_trace_callback(statements.append)
    assert await store.get_user("u1") is not None
    # SQLite runs a lone SELECT in a transaction of its own: no BEGIN, no COMMIT
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
    # a function that goes through SQLAlchemy's execute begins one: it is ended after
    assert await runner.read(one([]), point=True) == 1
    assert not conn.in_transaction()
    assert [s.split()[0].upper() for s in statements[1:]] == ["BEGIN", "SELECT", "ROLLBACK"]


async def test_a_busy_point_read_is_done_by_the_reader_thread(store: SQLStore) -> None:
    runner, here, calls = store._runner, threading.get_ident(), []
    await runner.read(one([]))

    def busy_here(conn: Connection) -> Any:
        calls.append(threading.get_ident())
        if threading.get_ident() == here:
            raise sqlite_error(sqlite3.SQLITE_BUSY)
        return conn.execute(sa.select(sa.literal(2))).scalar()

    assert await runner.read(busy_here, point=True) == 2
    assert calls[0] == here and calls[1] != here

    def broken(conn: Connection) -> Any:
        raise sqlite_error(sqlite3.SQLITE_IOERR)

    with pytest.raises(OperationalError):  # not busy: the caller hears of it
        await runner.read(broken, point=True)


async def test_one_thread_reads_inline(store: SQLStore) -> None:
    runner, calls = store._runner, []
    await runner.read(one([]))
    await runner.read(one([]), point=True)  # this thread now owns the inline connection
    reader = runner._reader  # type: ignore[attr-defined]
    assert await asyncio.to_thread(reader.inline, one(calls)) == (False, None)
    assert calls == []


async def test_a_locked_file_is_waited_for_off_the_loop(store: SQLStore, tmp_path: Path) -> None:
    """Another process holds the file in exclusive locking mode as this store starts."""
    await store.close()
    path = tmp_path / "point.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("COMMIT")  # the exclusive lock stays until the connection closes
    late = SQLStore(f"sqlite:///{path}")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(ticking())
    lookup = asyncio.create_task(late.get_user("u1"))
    await asyncio.sleep(0.2)
    assert not lookup.done()
    waiting = ticks
    blocker.close()
    found = await lookup
    ticker.cancel()
    await late.close()
    assert found is not None and found.id == "u1"
    assert waiting >= 5  # the loop ran while the lookup waited for the lock
