"""Scale-out with real engines: two in-process nodes on one PostgreSQL database and one Redis.

Needs TOKENWARD_TEST_POSTGRES_URL and TOKENWARD_TEST_REDIS_URL (skipped without them).
Each test gets a database of its own and a Redis key prefix of its own (channel and
rate-limit counters), so runs never collide. The reconnect test starts a private
redis-server (skipped when the binary is absent) so it can stop and restart it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tokenward import FrozenClock, RevocationView, RevokedToken, Verifier
from tokenward.keystore import decode_master_key
from tokenward.sdk.feed import RevocationFeed
from tokenward.server.keyring import rotate_now
from tokenward.server.services.accounts import Accounts
from tokenward.server.settings import Settings

from .conftest import ISSUER, PASSWORD
from .test_revocation_feed import FEED_URL, JWKS, Node, bearer, feed_client, kids, login, me
from .test_revocation_feed import running_node as node
from .test_serve import free_port

pytestmark = pytest.mark.anyio

PG_ENV, REDIS_ENV = "TOKENWARD_TEST_POSTGRES_URL", "TOKENWARD_TEST_REDIS_URL"
MASTER = "q" * 43  # base64url of 32 bytes: the same on every node, as in production
PUSHED_WITHIN = 3.0  # seconds; the nodes poll only every 60 s here


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.set(database=database or parsed.database).render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _apart(url: str, statement: str) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:  # clear of the test's event loop
        pool.submit(asyncio.run, _admin(url, statement)).result()


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"scale-out tests need PostgreSQL: set {PG_ENV}")
    name = f"tokenward_test_{uuid.uuid4().hex[:16]}"
    _apart(base, f'CREATE DATABASE "{name}"')
    try:
        yield _dsn(base, name)
    finally:
        _apart(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"scale-out tests need Redis: set {REDIS_ENV}")
    return url


@pytest.fixture
def node_settings(tmp_path: Path, pg_url: str) -> Callable[..., Settings]:
    prefix = f"tw-test-{uuid.uuid4().hex[:12]}"

    def make(name: str, redis: str, **over: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / name,  # nothing shared on disk: keys live in PostgreSQL
            "database_url": pg_url,
            "redis_url": redis,
            "redis_prefix": prefix,
            "master_key": MASTER,
            "issuer": ISSUER,
            "argon2_memory_kib": 8192,
            "argon2_time_cost": 1,
            "revocation_poll_seconds": 60,  # so anything faster was pushed
        }
        values.update(over)
        return Settings(**values)

    assert len(decode_master_key(MASTER)) == 32
    return make


async def subscribed(*nodes: Node) -> None:
    deadline = time.monotonic() + 10
    while not all(n.ctx.events.subscribed for n in nodes):  # bounded: a start-up, not expiry
        assert time.monotonic() < deadline, "the nodes did not subscribe to Redis"
        await asyncio.sleep(0.01)


async def heard_after(node: Node, cursor: int) -> None:
    """Return once ``node`` has applied an event after ``cursor`` (woken, never sleeping)."""
    while node.ctx.events.cursor <= cursor:
        await node.ctx.events.wait_past(node.ctx.events.head, PUSHED_WITHIN)


@pytest.fixture
async def two_nodes(
    node_settings: Callable[..., Settings], redis_url: str, clock: FrozenClock
) -> AsyncIterator[tuple[Node, Node]]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(node(node_settings("a", redis_url), clock))
        b = await stack.enter_async_context(node(node_settings("b", redis_url), clock))
        await Accounts(a.ctx).create("alice", PASSWORD, roles=["user"])
        await subscribed(a, b)
        yield a, b


async def test_logout_on_b_is_pushed_to_a(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    token = (await login(b.http))["access_token"]
    assert await me(a.http, token) == 200
    cursor = a.ctx.events.cursor
    assert (await b.http.post("/api/v1/logout", headers=bearer(token))).is_success
    await asyncio.wait_for(heard_after(a, cursor), PUSHED_WITHIN)
    assert await me(a.http, token) == 401


async def test_a_key_rotated_on_a_appears_in_bs_jwks(
    two_nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = two_nodes
    assert a.ctx.ring.signing_key().kid == b.ctx.ring.signing_key().kid  # one shared ring
    cursor = b.ctx.events.cursor
    _, key = await rotate_now(a.ctx.keys, a.ctx.settings.signing_alg, clock())
    await asyncio.wait_for(heard_after(b, cursor), PUSHED_WITHIN)
    assert key.kid in kids((await b.http.get(JWKS)).json())
    token = (await login(b.http))["access_token"]  # B signs with A's new key
    assert b.ctx.verifier.verify(token) and a.ctx.verifier.verify(token)


async def test_rate_limit_counters_are_shared(
    node_settings: Callable[..., Settings], redis_url: str, clock: FrozenClock
) -> None:
    limits = {"login_rate_per_ip": "3/minute", "login_rate_per_account": "100/minute"}
    async with (
        node(node_settings("a", redis_url, **limits), clock) as a,
        node(node_settings("b", redis_url, **limits), clock) as b,
    ):
        await Accounts(a.ctx).create("alice", PASSWORD, roles=["user"])
        body = {"username": "alice", "password": PASSWORD}
        codes = [(await n.http.post("/api/v1/login", json=body)).status_code for n in (a, b, a, b)]
        assert codes == [200, 200, 200, 429]  # the fourth from this IP, whichever node


async def test_an_sdk_verifier_on_the_redis_channel(
    two_nodes: tuple[Node, Node], redis_url: str
) -> None:
    a, b = two_nodes
    view = RevocationView()
    verifier = Verifier(
        (await a.http.get(JWKS)).json(),
        issuer=ISSUER,
        audience=ISSUER,
        clock=a.ctx.clock,
        revocation=view,
    )
    feed = RevocationFeed.redis(
        redis_url,
        view,
        channel=f"{a.ctx.settings.redis_prefix}:revocations",
        catch_up_url=FEED_URL,
        token_provider=await feed_client(a),
        client=a.http,
    )
    feed.start()
    try:
        assert await asyncio.to_thread(feed.ready.wait, 10)
        token = (await login(a.http))["access_token"]
        assert verifier.verify(token)
        assert (await b.http.post("/api/v1/logout", headers=bearer(token))).is_success
        deadline = time.monotonic() + PUSHED_WITHIN
        while view.generation == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        with pytest.raises(RevokedToken):
            verifier.verify(token)
    finally:
        await feed.aclose()


# -- Redis going away and coming back ------------------------------------------------------
class PrivateRedis:
    """A redis-server of this test's own on a free port, to stop and start at will."""

    def __init__(self, tmp_path: Path) -> None:
        self.port, self.dir = free_port(), tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [*args, "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded: until it accepts connections
            if subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.startswith(b"PONG"):
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path, redis_url: str) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("the reconnect test needs redis-server and redis-cli")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_nothing_is_missed_while_redis_is_down(
    node_settings: Callable[..., Settings], private_redis: PrivateRedis, clock: FrozenClock
) -> None:
    url = private_redis.url
    async with node(node_settings("a", url), clock) as a, node(node_settings("b", url), clock) as b:
        await Accounts(a.ctx).create("alice", PASSWORD, roles=["user"])
        await subscribed(a, b)
        token = (await login(a.http))["access_token"]
        private_redis.stop()
        cursor = a.ctx.events.cursor
        # Redis is down: logins, logouts and verification go on
        other = (await login(b.http))["access_token"]
        assert (await b.http.post("/api/v1/logout", headers=bearer(token))).is_success
        assert await me(b.http, token) == 401 and await me(a.http, other) == 200
        private_redis.start()
        # A resubscribes (backoff) and catches up from its cursor: the logout is not lost
        await asyncio.wait_for(heard_after(a, cursor), 15)
        assert await me(a.http, token) == 401
