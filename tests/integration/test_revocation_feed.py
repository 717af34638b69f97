"""The revocation feed end to end, in process: GET /api/v1/revocations (cursor, long poll,
who may read it), an SDK verifier following it, nodes sharing one SQLite file (events by
polling, the key ring in the store), upkeep.

Redis and PostgreSQL: tests/integration/test_redis.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward import FrozenClock, RevocationView, RevokedToken, Verifier
from tokenward.keys import KeyState
from tokenward.sdk.feed import RevocationFeed
from tokenward.server.app import create_app
from tokenward.server.background import maintain_once
from tokenward.server.context import AppContext
from tokenward.server.keyring import rotate_now
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.clients import Clients
from tokenward.server.services.revocations import Revocations
from tokenward.server.settings import Settings

from .conftest import ISSUER, PASSWORD
from .test_serve import ServerProcess, admin_passwords, free_port, server_env
from .test_serve import login as serve_login

pytestmark = pytest.mark.anyio

FEED = "/api/v1/revocations"
FEED_URL = ISSUER + FEED
JWKS = "/.well-known/jwks.json"
Reader = Callable[[], Awaitable[str]]


# -- helpers shared with test_redis.py -----------------------------------------------------
@dataclass
class Node:
    app: FastAPI
    ctx: AppContext
    http: httpx.AsyncClient


@asynccontextmanager
async def running_node(settings: Settings, clock: FrozenClock) -> AsyncIterator[Node]:
    """One server node in process, lifespan (and so its background tasks) running."""
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Node(app, app.state.ctx, http)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(http: httpx.AsyncClient, username: str = "alice") -> dict[str, Any]:
    r = await http.post("/api/v1/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def me(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/api/v1/me", headers=bearer(token))).status_code


async def feed_client(node: Node, scopes: tuple[str, ...] = ("revocations:read",)) -> Reader:
    """A new confidential client with ``scopes``; calling it gets a fresh access token."""
    client_id = f"rs-{len(await node.ctx.store.list_clients())}"
    _, secret = await Clients(node.ctx).create(client_id, "RS", scopes, ["client_credentials"])
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    async def token() -> str:  # RFC 6749 §4.4
        r = await node.http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert r.status_code == 200, r.text
        access: str = r.json()["access_token"]
        return access

    return token


async def feed_token(node: Node, scopes: tuple[str, ...] = ("revocations:read",)) -> str:
    return await (await feed_client(node, scopes))()


def kids(jwks: dict[str, Any]) -> set[str]:
    return {k["kid"] for k in jwks["keys"]}


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
async def alice(ctx: AppContext) -> None:
    await Accounts(ctx).create("alice", PASSWORD, roles=["user"])


@pytest.fixture
async def reader(ctx: AppContext, app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await feed_token(Node(app, ctx, client)))


# -- the endpoint --------------------------------------------------------------------------
async def test_logout_appears_in_the_feed_with_a_cursor(
    ctx: AppContext, client: httpx.AsyncClient, alice: None, reader: dict[str, str]
) -> None:
    start = (await client.get(FEED, headers=reader)).json()
    assert start["events"] == [] and start["more"] is False
    token = (await login(client))["access_token"]
    jti = ctx.verifier.verify(token)["jti"]
    assert (await client.post("/api/v1/logout", headers=bearer(token))).status_code == 204
    r = await client.get(FEED, params={"since": start["cursor"]}, headers=reader)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    denied = [e for e in body["events"] if e["kind"] == "deny"]
    # (the bearer's jti, and the session's tokens as the session ends: the same one here)
    assert {e["data"]["jti"] for e in denied} == {jti}
    assert body["cursor"] == body["events"][-1]["id"] > start["cursor"]
    again = (await client.get(FEED, params={"since": body["cursor"]}, headers=reader)).json()
    assert again == {"events": [], "cursor": body["cursor"], "more": False}


async def test_events_page_by_limit(
    ctx: AppContext, client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    for n in range(5):
        await Revocations(ctx).deny(f"j{n}", ctx.clock() + 60)
    first = (await client.get(FEED, params={"limit": 2}, headers=reader)).json()
    assert [e["data"]["jti"] for e in first["events"]] == ["j0", "j1"] and first["more"]
    rest = (
        await client.get(FEED, params={"since": first["cursor"], "limit": 10}, headers=reader)
    ).json()
    assert [e["data"]["jti"] for e in rest["events"]] == ["j2", "j3", "j4"]
    assert rest["more"] is False


async def test_long_poll_answers_when_an_event_arrives(
    ctx: AppContext, client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    cursor = (await client.get(FEED, headers=reader)).json()["cursor"]
    poll = asyncio.create_task(
        client.get(FEED, params={"since": cursor, "wait": 20}, headers=reader)
    )
    await asyncio.sleep(0)  # the poll is waiting (nothing new yet)
    assert not poll.done()
    await Revocations(ctx).revoke_all()
    r = await asyncio.wait_for(poll, 5)  # well before the 20 s wait
    assert [e["kind"] for e in r.json()["events"]] == ["epoch"]


async def test_long_poll_with_nothing_new_returns_empty_after_the_wait(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    r = await client.get(FEED, params={"wait": 0.05}, headers=reader)
    assert r.status_code == 200 and r.json()["events"] == []


async def test_who_may_read_the_feed(
    app: FastAPI, ctx: AppContext, client: httpx.AsyncClient, alice: None
) -> None:
    assert (await client.get(FEED)).status_code == 401
    user = (await login(client))["access_token"]
    assert (await client.get(FEED, headers=bearer(user))).status_code == 403  # not a client
    node = Node(app, ctx, client)
    other = await feed_token(node, scopes=("read",))
    assert (await client.get(FEED, headers=bearer(other))).status_code == 403  # no scope
    assert (await client.get(FEED, headers=bearer(await feed_token(node)))).status_code == 200


async def test_a_public_feed_needs_no_token(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    async with running_node(make_settings(revocation_feed_public=True), clock) as node:
        assert (await node.http.get(FEED)).status_code == 200


# -- an SDK verifier following the feed ----------------------------------------------------
async def test_sdk_verifier_rejects_the_token_after_logout(
    ctx: AppContext, client: httpx.AsyncClient, alice: None, reader: dict[str, str]
) -> None:
    view = RevocationView()
    jwks = (await client.get(JWKS)).json()
    verifier = Verifier(jwks, issuer=ISSUER, audience=ISSUER, clock=ctx.clock, revocation=view)
    feed = RevocationFeed.http(
        FEED_URL, view, token_provider=lambda: reader["Authorization"][7:], client=client
    )
    await feed.catch_up()
    tokens = await login(client)
    assert verifier.verify(tokens["access_token"])["sub"]
    poll = asyncio.create_task(feed.poll_once())  # a long poll, held by the server
    await asyncio.sleep(0)
    assert (await client.post("/api/v1/logout", headers=bearer(tokens["access_token"]))).is_success
    assert await asyncio.wait_for(poll, 5) >= 1  # answered by the event, not by the wait
    with pytest.raises(RevokedToken):
        verifier.verify(tokens["access_token"])


async def test_sdk_verifier_follows_every_kind_of_revocation(
    app: FastAPI, ctx: AppContext, client: httpx.AsyncClient, alice: None, clock: FrozenClock
) -> None:
    view = RevocationView()
    verifier = Verifier(
        (await client.get(JWKS)).json(),
        issuer=ISSUER,
        audience=ISSUER,
        clock=ctx.clock,
        revocation=view,
    )
    # a fresh token per request: revoke-all below revokes the reader's own token too
    tokens = await feed_client(Node(app, ctx, client))
    feed = RevocationFeed.http(FEED_URL, view, token_provider=tokens, client=client)
    first = (await login(client))["access_token"]
    assert (await client.post("/api/v1/logout-all", headers=bearer(first))).is_success
    await feed.catch_up()
    with pytest.raises(RevokedToken):  # the token version moved
        verifier.verify(first)
    clock.advance(2)
    second = (await login(client))["access_token"]
    assert verifier.verify(second)
    await Revocations(ctx).revoke_all()
    clock.advance(2)  # the reader's next token is issued after the new epoch
    await feed.catch_up()
    with pytest.raises(RevokedToken):  # the epoch moved
        verifier.verify(second)


# -- nodes on one SQLite file: events by polling, keys in the store ------------------------
@pytest.fixture
def shared(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(keyring_location="store", revocation_poll_seconds=0.05)


async def test_a_logout_on_one_node_reaches_the_other_by_polling(
    shared: Settings, clock: FrozenClock
) -> None:
    async with running_node(shared, clock) as a, running_node(shared, clock) as b:
        await Accounts(a.ctx).create("alice", PASSWORD, roles=["user"])
        token = (await login(a.http))["access_token"]
        assert await me(b.http, token) == 200
        cursor = b.ctx.events.cursor
        assert (await a.http.post("/api/v1/logout", headers=bearer(token))).is_success
        await asyncio.wait_for(_cursor_past(b.ctx, cursor), 5)  # no Redis: B polls the store
        assert await me(b.http, token) == 401


async def _cursor_past(ctx: AppContext, cursor: int) -> None:
    while ctx.events.cursor <= cursor:
        await ctx.events.wait_past(ctx.events.head, 1)


async def test_a_key_rotated_on_one_node_is_published_by_the_other(
    shared: Settings, clock: FrozenClock
) -> None:
    async with running_node(shared, clock) as a, running_node(shared, clock) as b:
        assert kids((await a.http.get(JWKS)).json()) == kids((await b.http.get(JWKS)).json())
        cursor = b.ctx.events.cursor
        _, key = await rotate_now(a.ctx.keys, shared.signing_alg, clock())
        await asyncio.wait_for(_cursor_past(b.ctx, cursor), 5)  # keys_changed reached B
        assert key.kid in kids((await b.http.get(JWKS)).json())
        assert b.ctx.ring.signing_key().kid == key.kid  # and B signs with it too


async def test_two_nodes_rotating_at_once_lose_no_key(shared: Settings, clock: FrozenClock) -> None:
    async with running_node(shared, clock) as a, running_node(shared, clock) as b:
        before = {k.kid for k in a.ctx.ring}
        (_, ka), (_, kb) = await asyncio.gather(
            rotate_now(a.ctx.keys, shared.signing_alg, clock()),
            rotate_now(b.ctx.keys, shared.signing_alg, clock()),
        )
        await a.ctx.keys.reload()
        await b.ctx.keys.reload()
        for node in (a, b):
            assert {k.kid for k in node.ctx.ring} == before | {ka.kid, kb.kid}
            assert [k.state for k in node.ctx.ring].count(KeyState.ACTIVE) == 1


async def test_an_existing_keys_file_moves_into_the_store(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    filed = make_settings()
    async with running_node(filed, clock) as node:
        before = kids((await node.http.get(JWKS)).json())
    assert (filed.data_dir / "keys.json").exists()
    async with running_node(make_settings(keyring_location="store"), clock) as node:
        assert kids((await node.http.get(JWKS)).json()) == before
        stored = await node.ctx.store.load_keyring_doc()
        assert stored is not None and "BEGIN" not in str(stored.doc)  # sealed, never PEM
    assert not (filed.data_dir / "keys.json").exists()
    assert (filed.data_dir / "keys.json.moved").exists()


# -- Redis configured but unreachable -----------------------------------------------------
async def test_an_unreachable_redis_breaks_no_login_refresh_or_verify(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    port = free_port()  # nobody listens there
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0", revocation_poll_seconds=0.05)
    async with running_node(settings, clock) as node:
        await Accounts(node.ctx).create("alice", PASSWORD, roles=["user"])
        tokens = await login(node.http)  # the rate limiter counts locally meanwhile
        r = await node.http.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        assert await me(node.http, access) == 200
        assert (await node.http.post("/api/v1/logout", headers=bearer(access))).is_success
        assert await me(node.http, access) == 401  # this node's view, at once
        kinds = [e.kind for e in await node.ctx.store.revocation_events(0)]
        assert "deny" in kinds  # the durable event, for the other nodes to poll
        assert not node.ctx.events.subscribed


# -- upkeep --------------------------------------------------------------------------------
async def test_upkeep_purges_expired_denials_and_old_events(
    ctx: AppContext, clock: FrozenClock
) -> None:
    await Revocations(ctx).deny("short", clock() + 60)
    await Revocations(ctx).deny("long", clock() + 3600)
    clock.advance(61)
    assert (await maintain_once(ctx))["denied"] == 1
    assert [j for j, _ in await ctx.store.denied(0)] == ["long"]
    assert len(ctx.revocation) == 1
    clock.advance(ctx.settings.revocation_event_retention + 1)
    await Revocations(ctx).deny("new", clock() + 60)
    purged = await maintain_once(ctx)
    assert purged["events"] == 2 and purged["denied"] == 1
    assert [e.data["jti"] for e in await ctx.store.revocation_events(0)] == ["new"]


# -- Server-Sent Events, from a real server (ASGITransport buffers whole responses) ---------
@pytest.mark.slow
def test_server_sent_events_stream_revocations(tmp_path: Path) -> None:
    env = server_env(tmp_path, TOKENWARD_REVOCATION_FEED_PUBLIC="true")
    with ServerProcess(tmp_path / "data", free_port(), env) as server:
        server.wait_ready()
        access = serve_login(server.base, "admin", admin_passwords(server)[0])["access_token"]
        headers = {"Accept": "text/event-stream", "Last-Event-ID": "0"}
        with httpx.stream("GET", server.base + FEED, headers=headers, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            httpx.post(server.base + "/api/v1/logout", headers=bearer(access)).raise_for_status()
            block = []
            for line in lines:  # bounded by the read timeout: an event must come
                if line.startswith("data: "):
                    break
                block.append(line)
        event = json.loads(line.removeprefix("data: "))
        assert block[-2:] == [f"id: {event['id']}", "event: deny"]
        assert event["kind"] == "deny" and event["data"]["jti"]
        server.stop_gracefully()
