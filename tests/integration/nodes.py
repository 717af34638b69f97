"""Helpers for test_nodes.py: real `tokenward serve` nodes on one PostgreSQL and one Redis.

A module gets a PostgreSQL database of its own (created and dropped with asyncpg) and a
Redis key prefix of its own, so runs never collide. ``TcpProxy`` stands between a node and
PostgreSQL so a test can cut the database off and bring it back without touching the
machine's server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from .test_serve import ServerProcess, free_port, server_env

PG_ENV, REDIS_ENV = "TOKENWARD_TEST_POSTGRES_URL", "TOKENWARD_TEST_REDIS_URL"
ISSUER = "http://tokenward.nodes.test"  # one public issuer for every node, as behind a balancer
ADMIN_PASSWORD = "nodes admin password"  # only the first node to start creates the admin
T = TypeVar("T")


def urls_or_skip() -> tuple[str, str]:
    pg, redis = os.environ.get(PG_ENV), os.environ.get(REDIS_ENV)
    if not (pg and redis):
        pytest.skip(f"real-process scale-out tests need both {PG_ENV} and {REDIS_ENV}")
    return pg, redis


def dsn(url: str, *, database: str | None = None, port: int | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    if port is not None:
        parsed = parsed.set(host="127.0.0.1", port=port)
    return parsed.render_as_string(hide_password=False)


def pg_address(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine on a fresh loop (the tests are sync: servers are other processes)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@contextmanager
def database(base_url: str) -> Iterator[str]:
    name = f"tokenward_nodes_{secrets.token_hex(8)}"
    run(_execute(base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield dsn(base_url, database=name)
    finally:
        run(_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Deployment:
    """What every node of one deployment shares."""

    tmp: Path
    database_url: str
    redis_url: str
    prefix: str
    master: str

    def env(self, **over: str) -> dict[str, str]:
        env = server_env(self.tmp)
        env.update(
            TOKENWARD_DATABASE_URL=self.database_url,
            TOKENWARD_REDIS_URL=self.redis_url,
            TOKENWARD_REDIS_PREFIX=self.prefix,
            TOKENWARD_MASTER_KEY=self.master,
            TOKENWARD_ISSUER=ISSUER,
            TOKENWARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
            TOKENWARD_REVOCATION_FEED_PUBLIC="true",  # the SDK feed reads it without a client
        )
        env.update(over)
        return env

    @contextmanager
    def nodes(self, count: int = 2, /, **over: str) -> Iterator[list[ServerProcess]]:
        """``count`` nodes started together (migrations and bootstrap race, as in production)."""
        with ExitStack() as stack:
            started = []
            for _ in range(count):
                data_dir = self.tmp / f"node-{secrets.token_hex(4)}"
                env = self.env(**over)
                started.append(stack.enter_context(ServerProcess(data_dir, free_port(), env)))
            for node in started:
                node.wait_ready()
            yield started


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(base: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, Any]:
    r = httpx.post(base + "/api/v1/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def refresh(base: str, token: str) -> httpx.Response:
    return httpx.post(base + "/api/v1/refresh", json={"refresh_token": token})


def me(base: str, token: str) -> int:
    return httpx.get(base + "/api/v1/me", headers=bearer(token)).status_code


def until(check: Callable[[], bool], timeout: float, step: float = 0.01) -> float | None:
    """Poll ``check`` until true or ``timeout``; returns the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)  # polling another process's state, never waiting for an expiry
    return None


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 to ``target`` that a test can cut and restore.

    Cutting closes the listener and every forwarded connection, so the node sees its
    database vanish (connection refused, pooled connections reset)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread.start()

    def _call(self, coro: Awaitable[None]) -> None:
        async def main() -> None:
            await coro

        asyncio.run_coroutine_threadsafe(main(), self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    def open(self) -> TcpProxy:
        self._call(self._open())
        return self

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def kids(base: str) -> set[str]:
    return {k["kid"] for k in httpx.get(base + "/.well-known/jwks.json").json()["keys"]}


CHAINS, KILL_AFTER = 6, 40


class Storm:
    """Chains of refreshes alternating between the nodes until node A dies under them."""

    def __init__(self, a: ServerProcess, b: ServerProcess) -> None:
        self.a, self.bases = a, [a.base, b.base]
        self.committed: list[str] = []
        self.refused: list[tuple[int, str]] = []
        self.in_flight = self.in_flight_at_kill = 0

    async def chain(self, http: httpx.AsyncClient, index: int, token: str) -> None:
        for step in range(10_000):
            self.in_flight += 1
            try:
                base = self.bases[(index + step) % 2]
                r = await http.post(base + "/api/v1/refresh", json={"refresh_token": token})
            except httpx.TransportError:
                return  # node A is gone: whether this one committed is unknown, so stop
            finally:
                self.in_flight -= 1
            if r.status_code != 200:
                self.refused.append((r.status_code, r.text[:300]))
                return
            token = r.json()["refresh_token"]
            self.committed.append(token)
            if len(self.committed) == KILL_AFTER:
                self.in_flight_at_kill = self.in_flight
                self.a.proc.send_signal(signal.SIGKILL)

    async def run(self, tokens: list[str]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            chains = (self.chain(http, i, t) for i, t in enumerate(tokens))
            await asyncio.wait_for(asyncio.gather(*chains), 30)
