"""POST /api/v1/refresh: rotation with reuse detection (SECURITY.md "Refresh tokens" 1-6)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.errors import OAuthError
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.ratelimit import Limiter
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.sessions import Sessions, hash_refresh_token
from tokenward.server.settings import Settings
from tokenward.store.base import RefreshState, User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio
DAY = 86400.0


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user"])


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})


def rows(settings: Settings, sql: str, *args: object) -> list[tuple[object, ...]]:
    path = settings.effective_database_url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


# -- rule 2: the chain ------------------------------------------------------------------------


async def test_a_chain_of_rotations_works(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await login(client)
    sid = (await me(client, first["access_token"])).json()["session_id"]
    tokens = [first["refresh_token"]]
    for _ in range(4):
        clock.advance(60)
        response = await refresh(client, tokens[-1])
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert (await me(client, body["access_token"])).json()["session_id"] == sid
        tokens.append(body["refresh_token"])
    assert len(set(tokens)) == 5
    records = [await ctx.store.get_refresh(hash_refresh_token(t)) for t in tokens]
    assert [r.generation for r in records if r] == [0, 1, 2, 3, 4]
    assert [r.state for r in records if r] == [RefreshState.USED] * 4 + [RefreshState.ACTIVE]
    family = await ctx.store.get_family(sid)
    assert family is not None and family.last_used_at == clock()


# -- rule 3: reuse detection ------------------------------------------------------------------


async def test_replaying_an_old_token_kills_the_family(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    first = await login(client)
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()
    assert (await me(client, third["access_token"])).status_code == 200

    assert_invalid_grant(await refresh(client, first["refresh_token"]))  # the replay

    assert_invalid_grant(await refresh(client, third["refresh_token"]))  # the newest died too
    for access in (first, second, third):
        assert (await me(client, access["access_token"])).status_code == 401
    events = await ctx.store.list_audit(type="refresh.reuse_detected")
    assert [e.user_id for e in events] == [alice.id]
    assert ctx.metrics.registry.get_sample_value("tokenward_refresh_reuse_detected_total") == 1


async def test_replay_does_not_touch_other_sessions(client: httpx.AsyncClient, alice: User) -> None:
    mine, other = await login(client), await login(client)
    await refresh(client, mine["refresh_token"])
    assert_invalid_grant(await refresh(client, mine["refresh_token"]))
    assert (await me(client, other["access_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_have_one_winner(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    token = (await login(client))["refresh_token"]
    answers = await asyncio.gather(*(refresh(client, token) for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 19
    record = await ctx.store.get_refresh(hash_refresh_token(token))
    assert record is not None
    members = rows(
        ctx.settings, "SELECT generation FROM refresh_tokens WHERE family_id = ?", record.family_id
    )
    assert sorted(g for (g,) in members) == [0, 1]  # exactly one child was inserted


# -- rule 4: lifetimes ------------------------------------------------------------------------


async def test_idle_timeout(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    idle = ctx.settings.refresh_idle_ttl
    token = (await login(client))["refresh_token"]
    clock.advance(idle - 1)
    response = await refresh(client, token)
    assert response.status_code == 200  # just inside: and the idle deadline moves on
    clock.advance(idle - 1)
    token = response.json()["refresh_token"]
    assert (await refresh(client, token)).status_code == 200
    expired = (await login(client))["refresh_token"]
    clock.advance(idle)
    assert_invalid_grant(await refresh(client, expired))


async def test_absolute_lifetime_cannot_be_extended(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    assert ctx.settings.refresh_absolute_ttl == 30 * DAY
    token = (await login(client))["refresh_token"]
    for _ in range(2):  # days 10 and 20: inside the 14-day idle window each time
        clock.advance(10 * DAY)
        response = await refresh(client, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    record = await ctx.store.get_refresh(hash_refresh_token(token))
    family = await ctx.store.get_family(record.family_id if record else "")
    assert record is not None and family is not None
    assert record.expires_at == family.expires_at  # capped, not day 20 + 14
    clock.advance(10 * DAY)  # day 30
    assert_invalid_grant(await refresh(client, token))


async def test_an_expired_access_token_is_renewed_by_refresh(
    client: httpx.AsyncClient, alice: User, clock: FrozenClock
) -> None:
    pair = await login(client)
    clock.advance(900 + 31)  # access_ttl + the verifier's leeway
    assert (await me(client, pair["access_token"])).status_code == 401
    fresh = await refresh(client, pair["refresh_token"])
    assert fresh.status_code == 200
    assert (await me(client, fresh.json()["access_token"])).status_code == 200


# -- rule 5: client and scope binding ---------------------------------------------------------


async def test_another_client_cannot_use_the_token(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    token = (await login(client))["refresh_token"]
    with pytest.raises(OAuthError) as caught:
        await Sessions(ctx).refresh(token, client_id="other-app", scope=None, request=RequestInfo())
    assert caught.value.error == "invalid_grant"
    assert (await refresh(client, token)).status_code == 200  # not consumed by the attempt


async def test_scope_may_narrow_but_not_widen(ctx: AppContext, alice: User) -> None:
    sessions = Sessions(ctx)
    start = await sessions.start(alice, client_id="app", scope="read write", request=RequestInfo())
    narrowed = await sessions.refresh(
        start.refresh_token, client_id="app", scope="read", request=RequestInfo()
    )
    assert narrowed.scope == "read"
    assert ctx.verifier.verify(narrowed.access_token)["scope"] == "read"
    with pytest.raises(OAuthError) as caught:
        await sessions.refresh(
            narrowed.refresh_token, client_id="app", scope="read admin", request=RequestInfo()
        )
    assert caught.value.error == "invalid_scope"
    # RFC 6749 §6: the refresh token keeps the original grant
    again = await sessions.refresh(
        narrowed.refresh_token, client_id="app", scope=None, request=RequestInfo()
    )
    assert again.scope == "read write"


# -- rule 6: token kinds stay apart -----------------------------------------------------------


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient, alice: User) -> None:
    pair = await login(client)
    response = await me(client, pair["refresh_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient, alice: User) -> None:
    pair = await login(client)
    assert_invalid_grant(await refresh(client, pair["access_token"]))
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_unknown_token_is_invalid_grant(client: httpx.AsyncClient, alice: User) -> None:
    assert_invalid_grant(await refresh(client, "A" * 43))


# -- rule 1: only hashes are stored -----------------------------------------------------------


async def test_the_database_holds_only_hashes(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    issued = [(await login(client))["refresh_token"]]
    for _ in range(2):
        issued.append((await refresh(client, issued[-1])).json()["refresh_token"])
    dump = _dump(Path(ctx.settings.effective_database_url.split(":///", 1)[1]))
    for token in issued:
        assert token not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump  # the scan does see rows


def _dump(path: Path) -> str:
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )


# -- malformed requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"refresh_token": ""},
        {"refresh_token": 42},
        {"refresh_token": ["x"]},
        {"refresh_token": "x" * 5000},
        {"refresh_token": "x", "extra": 1},
        {},
        [],
    ],
)
async def test_malformed_refresh_bodies_are_400(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/api/v1/refresh", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("content", [b"not json", b"{", b"\xff\xfe\x00", b"refresh_token=x"])
async def test_non_json_refresh_bodies_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/api/v1/refresh", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


# -- per-account rate limit (SECURITY.md "Accounts") ------------------------------------------
async def test_refreshes_are_rate_limited_per_user_without_spending_the_token(
    client: httpx.AsyncClient, ctx: AppContext, alice: User
) -> None:
    ctx.limiter = Limiter(
        {
            "login:ip": "1000/minute",
            "login:account": "1000/minute",
            "token:ip": "1000/minute",
            "token:account": "2/minute",
        }
    )
    token = (await login(client))["refresh_token"]
    for _ in range(2):
        response = await refresh(client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
    limited = await refresh(client, token)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another user has a budget of their own
    await Accounts(ctx).create("bob", PASSWORD)
    bob = await client.post("/api/v1/login", json={"username": "bob", "password": PASSWORD})
    assert (await refresh(client, bob.json()["refresh_token"])).status_code == 200
    # the refused request did not rotate: the same token works once the window has room
    ctx.limiter.reset()
    assert (await refresh(client, token)).status_code == 200
