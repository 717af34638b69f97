"""Malformed input to the sign-in API: always a 4xx problem+json, never a 5xx, never echoed."""

from __future__ import annotations

import httpx
import pytest

from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.store.base import User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio
SECRET = "s3cret-value-never-echoed"


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD)


def assert_problem(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"password": SECRET},
        {"username": None, "password": SECRET},
        {"username": 1, "password": SECRET},
        {"username": "alice", "password": [SECRET]},
        {"username": "alice", "password": {"$ne": SECRET}},
        {"username": "alice", "password": SECRET, "cookie": "yes"},
        {"username": "alice", "password": SECRET, "admin": True},
        {"username": "", "password": SECRET},
        {"username": "alice", "password": ""},
        {"username": "a" * 10_000, "password": SECRET},
        {"username": "alice", "password": SECRET + "x" * 2000},
        [],
        [{"username": "alice", "password": SECRET}],
        "alice",
        None,
        1e308,
    ],
)
async def test_malformed_login_bodies_are_400(
    client: httpx.AsyncClient, alice: User, body: object
) -> None:
    assert_problem(await client.post("/api/v1/login", json=body))


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"{", "application/json"),
        (b'{"username": "alice", "password": "' + SECRET.encode() + b'"', "application/json"),
        (b"\xff\xfe\x00\x00", "application/json"),
        (b'{"username": "alice", "password": NaN}', "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b"username=alice&password=" + SECRET.encode(), "application/x-www-form-urlencoded"),
        (b"username=alice", "text/plain"),
    ],
)
async def test_non_json_login_bodies_are_400(
    client: httpx.AsyncClient, alice: User, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/api/v1/login", content=content, headers={"content-type": content_type}
    )
    assert_problem(response)


@pytest.mark.parametrize(
    "username", ["alice\x00", "ålice", "alice' OR '1'='1", "../../etc/passwd", "\ud7ff" * 64]
)
async def test_odd_but_wellformed_usernames_are_just_wrong_credentials(
    client: httpx.AsyncClient, alice: User, username: str
) -> None:
    response = await client.post("/api/v1/login", json={"username": username, "password": SECRET})
    assert_problem(response, 401)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": 12345678},
        {"current_password": PASSWORD, "new_password": "x" * 5000},
        {"current_password": PASSWORD, "new_password": SECRET, "extra": 1},
    ],
)
async def test_malformed_password_change_bodies_are_400(
    client: httpx.AsyncClient, alice: User, body: object
) -> None:
    login = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert_problem(await client.post("/api/v1/password", json=body, headers=headers))
