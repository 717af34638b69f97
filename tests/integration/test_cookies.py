"""Cookie mode asked for per login: __Host- cookies, double-submit CSRF, logout clears them."""

from __future__ import annotations

import httpx
import pytest

from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.sessions import hash_refresh_token
from tokenward.store.base import RefreshState, User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio
REFRESH = "__Host-tokenward_refresh"
CSRF = "__Host-tokenward_csrf"
THIRTY_DAYS = "Max-Age=2592000"


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD)


def set_cookies(response: httpx.Response) -> dict[str, tuple[str, set[str]]]:
    """name -> (value, attributes) of every Set-Cookie header."""
    found = {}
    for line in response.headers.get_list("set-cookie"):
        first, *attributes = line.split("; ")
        name, _, value = first.partition("=")
        found[name] = (value, set(attributes))
    return found


async def cookie_login(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD, "cookie": True}
    )
    assert response.status_code == 200, response.text
    return response


def csrf_header(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies[CSRF]}


async def test_login_sets_host_prefixed_cookies_with_exact_attributes(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    response = await cookie_login(client)
    cookies = set_cookies(response)
    assert set(cookies) == {REFRESH, CSRF}
    refresh_value, refresh_attributes = cookies[REFRESH]
    assert refresh_attributes == {"HttpOnly", THIRTY_DAYS, "Path=/", "SameSite=strict", "Secure"}
    csrf_value, csrf_attributes = cookies[CSRF]
    assert csrf_attributes == {THIRTY_DAYS, "Path=/", "SameSite=strict", "Secure"}  # readable
    assert len(csrf_value) >= 43 and csrf_value != refresh_value
    record = await ctx.store.get_refresh(hash_refresh_token(refresh_value))
    assert record is not None and record.state is RefreshState.ACTIVE


async def test_login_body_has_no_refresh_token(client: httpx.AsyncClient, alice: User) -> None:
    response = await cookie_login(client)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_by_cookie_needs_the_csrf_header(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    await cookie_login(client)
    before = client.cookies[REFRESH]
    missing = await client.post("/api/v1/refresh")
    assert missing.status_code == 403
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["error"] == "csrf_failed"
    wrong = await client.post("/api/v1/refresh", headers={"X-CSRF-Token": "A" * 43})
    assert wrong.status_code == 403
    record = await ctx.store.get_refresh(hash_refresh_token(before))
    assert record is not None and record.state is RefreshState.ACTIVE  # nothing consumed

    response = await client.post("/api/v1/refresh", headers=csrf_header(client))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}
    assert response.headers["cache-control"] == "no-store"
    cookies = set_cookies(response)
    assert set(cookies) == {REFRESH}  # rotated; the CSRF cookie stays
    value, attributes = cookies[REFRESH]
    assert value != before
    assert attributes == {"HttpOnly", THIRTY_DAYS, "Path=/", "SameSite=strict", "Secure"}
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200


async def test_csrf_header_without_the_csrf_cookie_is_refused(
    client: httpx.AsyncClient, alice: User
) -> None:
    await cookie_login(client)
    header = csrf_header(client)
    client.cookies.delete(CSRF)
    assert (await client.post("/api/v1/refresh", headers=header)).status_code == 403


async def test_refresh_without_any_token_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/refresh")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_logout_by_cookie_needs_csrf_and_clears_the_cookies(
    client: httpx.AsyncClient, alice: User
) -> None:
    login = await cookie_login(client)
    token = client.cookies[REFRESH]
    assert (await client.post("/api/v1/logout")).status_code == 403
    response = await client.post("/api/v1/logout", headers=csrf_header(client))
    assert response.status_code == 204
    cleared = set_cookies(response)
    assert set(cleared) == {REFRESH, CSRF}
    for value, attributes in cleared.values():
        assert value == '""' and "Max-Age=0" in attributes and "Secure" in attributes
    gone = await client.post("/api/v1/refresh", json={"refresh_token": token})
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_logout_by_bearer_clears_the_cookies_too(
    client: httpx.AsyncClient, alice: User
) -> None:
    login = await cookie_login(client)
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await client.post("/api/v1/logout", headers=headers)
    assert response.status_code == 204
    assert set(set_cookies(response)) == {REFRESH, CSRF}


async def test_a_token_in_the_body_needs_no_csrf(client: httpx.AsyncClient, alice: User) -> None:
    login = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert not set_cookies(login)  # cookie mode is off by default
    token = login.json()["refresh_token"]
    response = await client.post("/api/v1/refresh", json={"refresh_token": token})
    assert response.status_code == 200
    assert "refresh_token" in response.json() and not set_cookies(response)
