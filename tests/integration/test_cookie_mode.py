"""Cookie mode as the server default, with a cookie domain (no __Host- prefix then)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.server.settings import Settings
from tokenward.store.base import User

from .conftest import PASSWORD
from .test_cookies import set_cookies

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        cookie_mode=True,
        cookie_domain="auth.example",
        cookie_samesite="lax",
        refresh_absolute_ttl=7 * 86400,
    )


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD)


async def login(client: httpx.AsyncClient, **extra: object) -> httpx.Response:
    response = await client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD, **extra}
    )
    assert response.status_code == 200, response.text
    return response


async def test_domain_cookies_drop_the_host_prefix(client: httpx.AsyncClient, alice: User) -> None:
    response = await login(client)
    cookies = set_cookies(response)
    assert set(cookies) == {"tokenward_refresh", "tokenward_csrf"}
    common = {"Domain=auth.example", "Max-Age=604800", "Path=/", "SameSite=lax", "Secure"}
    assert cookies["tokenward_refresh"][1] == common | {"HttpOnly"}
    assert cookies["tokenward_csrf"][1] == common
    assert "refresh_token" not in response.json()


async def test_domain_cookies_refresh_with_csrf(client: httpx.AsyncClient, alice: User) -> None:
    await login(client)
    assert (await client.post("/api/v1/refresh")).status_code == 403
    headers = {"X-CSRF-Token": client.cookies["tokenward_csrf"]}
    response = await client.post("/api/v1/refresh", headers=headers)
    assert response.status_code == 200
    assert set(set_cookies(response)) == {"tokenward_refresh"}


async def test_a_client_may_opt_out_per_login(client: httpx.AsyncClient, alice: User) -> None:
    response = await login(client, cookie=False)
    assert not set_cookies(response)
    assert "refresh_token" in response.json()


async def test_logout_clears_domain_cookies(client: httpx.AsyncClient, alice: User) -> None:
    await login(client)
    headers = {"X-CSRF-Token": client.cookies["tokenward_csrf"]}
    response = await client.post("/api/v1/logout", headers=headers)
    assert response.status_code == 204
    cleared = set_cookies(response)
    assert {name for name, (_, attrs) in cleared.items() if "Domain=auth.example" in attrs} == {
        "tokenward_refresh",
        "tokenward_csrf",
    }
