"""Sessions: /me, logout, logout-all, password change, disable, list and revoke (rule 4)."""

from __future__ import annotations

import httpx
import pytest

from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.routes.sessions import device_name
from tokenward.server.services.accounts import Accounts
from tokenward.store.base import User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
NEW_PASSWORD = "a quite different passphrase"


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user", "admin"])


@pytest.fixture
async def bob(ctx: AppContext) -> User:
    return await Accounts(ctx).create("bob", PASSWORD)


async def login(
    client: httpx.AsyncClient,
    username: str = "alice",
    password: str = PASSWORD,
    user_agent: str = FIREFOX_LINUX,
) -> dict[str, str]:
    response = await client.post(
        "/api/v1/login",
        json={"username": username, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def bearer(pair: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def me(client: httpx.AsyncClient, pair: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/me", headers=bearer(pair))


async def refresh(client: httpx.AsyncClient, pair: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/refresh", json={"refresh_token": pair["refresh_token"]})


async def assert_dead(client: httpx.AsyncClient, pair: dict[str, str]) -> None:
    assert (await me(client, pair)).status_code == 401
    gone = await refresh(client, pair)
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"


async def assert_alive(client: httpx.AsyncClient, pair: dict[str, str]) -> None:
    assert (await me(client, pair)).status_code == 200


# -- /me --------------------------------------------------------------------------------------


async def test_me_describes_the_caller(client: httpx.AsyncClient, alice: User) -> None:
    pair = await login(client)
    response = await me(client, pair)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alice.id and body["username"] == "alice"
    assert body["roles"] == ["user", "admin"]
    assert isinstance(body["session_id"], str) and body["session_id"]


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="tokenward"'


# -- logout -----------------------------------------------------------------------------------


async def test_logout_kills_the_access_token_at_once(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    pair, other = await login(client), await login(client)
    await assert_alive(client, pair)  # now in the verifier's cache: revocation still applies
    response = await client.post("/api/v1/logout", headers=bearer(pair))
    assert response.status_code == 204
    await assert_dead(client, pair)
    await assert_alive(client, other)  # another session of the same user lives on
    assert len(await ctx.store.list_audit(type="logout")) == 1


async def test_logout_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/logout")).status_code == 401
    bad = await client.post("/api/v1/logout", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_logout_all_kills_every_session(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    first, second = await login(client), await login(client)
    bobs = await login(client, username="bob")
    response = await client.post("/api/v1/logout-all", headers=bearer(first))
    assert response.status_code == 204
    await assert_dead(client, first)
    await assert_dead(client, second)
    await assert_alive(client, bobs)
    await assert_alive(client, await login(client))  # signing in again works


# -- password change --------------------------------------------------------------------------


async def test_password_change_ends_the_other_sessions(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    current, other = await login(client), await login(client)
    response = await client.post(
        "/api/v1/password",
        headers=bearer(current),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    await assert_dead(client, other)
    assert (await me(client, current)).status_code == 401  # every old access token died
    renewed = await refresh(client, current)  # but this session lives on
    assert renewed.status_code == 200
    assert (await me(client, renewed.json())).status_code == 200
    old = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    await login(client, password=NEW_PASSWORD)
    events = await ctx.store.list_audit(type="password.changed")
    assert [e.data["sessions_ended"] for e in events] == [1]
    assert PASSWORD not in repr(events) and NEW_PASSWORD not in repr(events)


@pytest.mark.parametrize(
    ("current", "new", "status"),
    [
        ("wrong current password", NEW_PASSWORD, 401),
        (PASSWORD, "short", 400),
        (PASSWORD, "password1", 400),
        (PASSWORD, PASSWORD, 400),
    ],
)
async def test_password_change_refusals_change_nothing(
    client: httpx.AsyncClient, alice: User, current: str, new: str, status: int
) -> None:
    pair, other = await login(client), await login(client)
    response = await client.post(
        "/api/v1/password",
        headers=bearer(pair),
        json={"current_password": current, "new_password": new},
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    await assert_alive(client, pair)
    await assert_alive(client, other)
    await login(client)


async def test_password_change_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 401


# -- disable ----------------------------------------------------------------------------------


async def test_disabling_kills_every_session(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    first, second = await login(client), await login(client)
    await Accounts(ctx).set_disabled(alice.id, True, request=RequestInfo())
    await assert_dead(client, first)
    await assert_dead(client, second)
    assert [e.user_id for e in await ctx.store.list_audit(type="user.disabled")] == [alice.id]
    await Accounts(ctx).set_disabled(alice.id, False, request=RequestInfo())
    await assert_dead(client, first)  # enabling does not bring sessions back
    await assert_alive(client, await login(client))


# -- list and revoke --------------------------------------------------------------------------


async def test_sessions_list_shows_device_ip_and_the_current_one(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    laptop = await login(client, user_agent=FIREFOX_LINUX)
    phone = await login(client, user_agent=SAFARI_IOS)
    await login(client, username="bob")
    response = await client.get("/api/v1/sessions", headers=bearer(phone))
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert len(sessions) == 2  # bob's is not listed
    by_device = {s["device"]: s for s in sessions}
    assert set(by_device) == {"Firefox on Linux", "Safari on iOS"}
    assert by_device["Safari on iOS"]["current"] is True
    assert by_device["Firefox on Linux"]["current"] is False
    assert {s["ip"] for s in sessions} == {"203.0.113.7"}
    laptop_id = (await me(client, laptop)).json()["session_id"]
    assert by_device["Firefox on Linux"]["id"] == laptop_id
    assert set(sessions[0]) == {"id", "device", "ip", "created", "last_used", "current"}


async def test_revoking_one_of_your_sessions(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    laptop, phone = await login(client), await login(client, user_agent=SAFARI_IOS)
    phone_id = (await me(client, phone)).json()["session_id"]
    response = await client.delete(f"/api/v1/sessions/{phone_id}", headers=bearer(laptop))
    assert response.status_code == 204
    await assert_dead(client, phone)
    await assert_alive(client, laptop)
    listed = (await client.get("/api/v1/sessions", headers=bearer(laptop))).json()["sessions"]
    assert [s["device"] for s in listed] == ["Firefox on Linux"]
    again = await client.delete(f"/api/v1/sessions/{phone_id}", headers=bearer(laptop))
    assert again.status_code == 404
    assert len(await ctx.store.list_audit(type="session.revoked")) == 1


async def test_someone_elses_session_is_not_found(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    mine, bobs = await login(client), await login(client, username="bob")
    bobs_id = (await me(client, bobs)).json()["session_id"]
    response = await client.delete(f"/api/v1/sessions/{bobs_id}", headers=bearer(mine))
    assert response.status_code == 404
    missing = await client.delete("/api/v1/sessions/" + "0" * 32, headers=bearer(mine))
    assert missing.status_code == 404
    assert response.json() == missing.json()  # no way to tell "exists, not yours"
    await assert_alive(client, bobs)


@pytest.mark.parametrize("bad_id", ["x" * 65, "a.b", "%00"])
async def test_malformed_session_ids_are_400(
    client: httpx.AsyncClient, alice: User, bad_id: str
) -> None:
    pair = await login(client)
    response = await client.delete(f"/api/v1/sessions/{bad_id}", headers=bearer(pair))
    assert response.status_code == 400


async def test_sessions_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/sessions")).status_code == 401
    assert (await client.delete("/api/v1/sessions/abc")).status_code == 401


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (SAFARI_IOS, "Safari on iOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.27.0", "httpx"),
        ("", "Unknown device"),
        ("\x00" * 600, "Unknown device"),
    ],
)
def test_device_names(user_agent: str, device: str) -> None:
    assert device_name(user_agent) == device
