"""Where the SQL store's transactions run: one sync function per transaction.

Every store operation is a plain function over a synchronous SQLAlchemy ``Connection``
(``sql_refresh``, ``sql_events``, ``sql``); a runner executes it as one transaction and
hands back the result to the event loop.

- PostgreSQL: :class:`AsyncRunner` on asyncpg, through ``AsyncConnection.run_sync``
  (each statement is a network round trip that the loop awaits).
- SQLite: :class:`ThreadRunner`. The database is a local file and the stdlib driver is
  blocking, so each transaction runs whole in a thread of the runner's own, on a
  connection kept open for the thread's life: one hand-off per transaction. (The async
  driver, aiosqlite, hands every cursor call to its thread and back: ~1 ms per read and
  ~55 hand-offs per refresh on the 2-core reference machine, docs/benchmarks.md.)
  A reader thread serves reads, which WAL lets run beside the writer; a point read (a
  lookup by key: the refresh's token, the login's user) runs on the calling thread.

One writer thread serialises this process's writes (SQLite has one writer per file) and
commits them in groups: the jobs waiting when a transaction starts share it, each inside
a SAVEPOINT of its own, so one job failing rolls back only its own work, and the group
pays for one durable commit (``synchronous=FULL``: one fsync) instead of one each. A job
completes only after the commit that holds it. A job whose awaiting task was cancelled
still runs to its commit or rollback: atomic either way.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncRunner", "Runner", "ThreadRunner", "Work", "driver_sql"]

T = TypeVar("T")
Work = Callable[[Connection], T]

# Execution option marking a connection that will write (see the SQLite begin hook).
WRITE = "tokenward_write"
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
MAX_GROUP = 64  # jobs per group commit: bounds how long the first job of a group waits


class Runner(Protocol):
    """Runs ``fn(connection)`` as one transaction: committed if it returns, rolled back
    if it raises (the exception propagates unchanged)."""

    @property
    def url(self) -> URL: ...
    @property
    def backend(self) -> str: ...  # SQLAlchemy's backend name: "sqlite", "postgresql"
    async def read(self, fn: Work[T], *, point: bool = False) -> T: ...
    # ``point``: one statement, a lookup by key; a runner may run it on the caller's thread
    async def write(self, fn: Work[T]) -> T: ...
    async def dispose(self) -> None: ...


class _Named:
    _engine: Engine | AsyncEngine

    @property
    def url(self) -> URL:
        return self._engine.url

    @property
    def backend(self) -> str:
        return self._engine.dialect.name


class AsyncRunner(_Named):
    _engine: AsyncEngine

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, fn: Work[T], *, point: bool = False) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(fn)  # the connection's exit rolls back: read only

    async def write(self, fn: Work[T]) -> T:
        async with self._engine.connect() as conn:
            await conn.execution_options(**{WRITE: True})
            async with conn.begin():
                return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self._engine.dispose()


class _Reader:
    """The reader thread and the connection it keeps open for its whole life; and a
    second connection, opened there, for point reads on the event loop's thread.

    A lookup by key takes tens of microseconds on a local file; the hand-off to the reader
    thread and back cost far more CPU (thread wake-ups, the loop's self-pipe, the GIL:
    docs/benchmarks.md), so a point read runs on the thread that asks for it. That
    connection never waits for a lock (busy_timeout 0): WAL readers take no lock that a
    writer holds, so SQLite is busy for them only in rare cases (crash recovery, another
    process in exclusive locking mode), and then the reader thread does the waiting. Its
    one statement needs no BEGIN: SQLite runs it in a transaction of its own (autocommit),
    and BEGIN and COMMIT cost as much as the lookup.
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: Connection | None = None  # the reader thread's
        self._inline: Connection | None = None  # used by one other thread, the loop's
        self._inline_thread: int | None = None

    def _transaction(self, fn: Work[T]) -> T:
        if not _usable(self._conn):
            self._conn = self._engine.connect()  # not WRITE: its transactions begin deferred
        if not _usable(self._inline):  # opened here, where the connect hook may wait
            self._inline = self._engine.connect()
            driver_sql(self._inline, "PRAGMA busy_timeout=0")
        assert self._conn is not None
        with self._conn.begin():
            return fn(self._conn)

    def inline(self, fn: Work[T]) -> tuple[bool, Any]:
        """(True, the result) of a point read on the caller's thread; (False, None) when it
        must go to the reader thread: SQLite was busy, the connection is not open yet, or
        another thread already reads inline (a connection serves one thread)."""
        conn, me = self._inline, threading.get_ident()
        if conn is None or not _usable(conn) or self._inline_thread not in (None, me):
            return False, None
        self._inline_thread = me
        try:
            return True, fn(conn)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlite_errorcode", None) not in _BUSY:
                raise
            return False, None
        finally:
            if conn.in_transaction():  # fn used SQLAlchemy's execute, which begins one
                conn.rollback()

    def _close(self) -> None:
        for conn in (self._conn, self._inline):
            if conn is not None:
                conn.close()
        self._conn = self._inline = None

    async def run(self, fn: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._transaction, fn)

    async def shutdown(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=False)


def _usable(conn: Connection | None) -> bool:
    return conn is not None and not conn.closed and not conn.invalidated


def driver_sql(conn: Connection, sql: str) -> None:
    """One statement straight on the DBAPI connection: no SQLAlchemy autobegin, no events."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Work[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _GroupWriter:
    """The writer thread: group commits of the jobs queued meanwhile (module docstring)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    async def shutdown(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        running = True
        while running:
            job = self._queue.get()
            group: list[_Job] = []
            while job is not None:
                group.append(job)
                if len(group) == MAX_GROUP:
                    break
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
            running = job is not None  # None: the shutdown mark
            if group:
                self._commit(group)
        if self._conn is not None:
            self._conn.close()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect().execution_options(**{WRITE: True})
        return self._conn

    def _commit(self, group: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._connection()
            with conn.begin():
                if len(group) == 1:  # alone: its own transaction, no savepoint needed
                    outcomes.append((True, group[0].fn(conn)))
                else:
                    outcomes.extend(self._each(conn, group))
        except BaseException as exc:  # BEGIN, COMMIT or a lone job failed: the group did
            # BaseException too: the thread must outlive any job, or every later write
            # would wait forever for a thread that is gone
            outcomes = [(False, exc)] * len(group)
        for job, (ok, value) in zip(group, outcomes, strict=True):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, ok, value)
            except RuntimeError:  # that loop is closed: nobody waits any more
                continue

    @staticmethod
    def _each(conn: Connection, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Each job in a SAVEPOINT, so that a failure undoes that job only.

        The savepoints go straight to the driver: through ``begin_nested`` the SAVEPOINT
        and RELEASE cost more of the GIL than the rotation between them (py-spy).
        Anything but an Exception ends the group: ``_commit`` then fails it whole.
        """
        outcomes: list[tuple[bool, Any]] = []
        cursor = conn.connection.cursor()
        try:
            for job in group:
                cursor.execute("SAVEPOINT tokenward_job")
                try:
                    value = job.fn(conn)
                except Exception as exc:
                    cursor.execute("ROLLBACK TO SAVEPOINT tokenward_job")
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, value))
                cursor.execute("RELEASE SAVEPOINT tokenward_job")
        finally:
            cursor.close()
        return outcomes


class ThreadRunner(_Named):
    _engine: Engine

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = _GroupWriter(engine, "tokenward-sql-write")
        self._reader = _Reader(engine, "tokenward-sql-read")

    async def read(self, fn: Work[T], *, point: bool = False) -> T:
        if point:
            done, value = self._reader.inline(fn)
            if done:
                return cast(T, value)
        return await self._reader.run(fn)

    async def write(self, fn: Work[T]) -> T:
        return await self._writer.run(fn)

    async def dispose(self) -> None:
        await self._reader.shutdown()
        await self._writer.shutdown()
        self._engine.dispose()
