"""The refresh grace window (SECURITY.md "Refresh tokens" 3): only the immediately previous
token, only within the window, only once; anything else is reuse and kills the family."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.sessions import hash_refresh_token
from tokenward.server.settings import Settings
from tokenward.store.base import User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(refresh_grace_seconds=2)


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD)


async def login(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    token: str = response.json()["refresh_token"]
    return token


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/refresh", json={"refresh_token": token})


async def active_members(ctx: AppContext, token: str) -> int:
    record = await ctx.store.get_refresh(hash_refresh_token(token))
    assert record is not None
    path = ctx.settings.effective_database_url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM refresh_tokens WHERE family_id = ? AND state = 'active'",
            (record.family_id,),
        ).fetchone()
    return int(count)


async def test_previous_token_within_the_window_works_once(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await login(client)
    lost = await refresh(client, first)  # the client never saw this answer
    assert lost.status_code == 200
    clock.advance(1.5)
    retry = await refresh(client, first)
    assert retry.status_code == 200
    assert await active_members(ctx, first) == 1  # the lost token was replaced, not added
    lost_access = {"Authorization": f"Bearer {lost.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=lost_access)).status_code == 401
    assert (await refresh(client, lost.json()["refresh_token"])).status_code == 400
    events = await ctx.store.list_audit(type="refresh.rotated")
    assert sorted(e.data["grace"] for e in events) == [False, True]


async def test_the_regranted_token_carries_the_session_on(
    client: httpx.AsyncClient, alice: User, clock: FrozenClock
) -> None:
    first = await login(client)
    await refresh(client, first)
    clock.advance(1)
    regranted = (await refresh(client, first)).json()
    onward = await refresh(client, regranted["refresh_token"])
    assert onward.status_code == 200
    headers = {"Authorization": f"Bearer {onward.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200


async def test_a_second_grace_use_is_reuse(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await login(client)
    await refresh(client, first)
    clock.advance(0.5)
    regranted = (await refresh(client, first)).json()["refresh_token"]
    clock.advance(0.5)
    assert (await refresh(client, first)).status_code == 400
    assert (await refresh(client, regranted)).status_code == 400  # family revoked
    assert await active_members(ctx, first) == 0


async def test_an_older_token_within_the_window_is_reuse(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await login(client)
    second = (await refresh(client, first)).json()["refresh_token"]
    newest = (await refresh(client, second)).json()["refresh_token"]
    clock.advance(1)
    assert (await refresh(client, first)).status_code == 400  # grandparent of the active one
    assert (await refresh(client, newest)).status_code == 400
    assert len(await ctx.store.list_audit(type="refresh.reuse_detected")) == 1


async def test_previous_token_after_the_window_is_reuse(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await login(client)
    newest = (await refresh(client, first)).json()["refresh_token"]
    clock.advance(2.001)
    assert (await refresh(client, first)).status_code == 400
    assert (await refresh(client, newest)).status_code == 400
    assert await active_members(ctx, first) == 0


async def test_window_edge_is_inclusive(
    client: httpx.AsyncClient, alice: User, clock: FrozenClock
) -> None:
    first = await login(client)
    await refresh(client, first)
    clock.advance(2)
    assert (await refresh(client, first)).status_code == 200
