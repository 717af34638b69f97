"""LoginPath (routes/login.py, on routes/plain.py): the plain POST /api/v1/login answered
ahead of FastAPI.

It must answer as the route does, and hand every other request, body intact, to the
route: an ``Origin`` header (no CORS configured here: no CORS headers either) sends a
request to the route, which the fast path never takes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward.server.context import AppContext
from tokenward.server.routes.login import LoginPath, plain_login
from tokenward.server.services.accounts import Accounts
from tokenward.server.settings import Settings
from tokenward.store.base import User

from .conftest import PASSWORD
from .test_refresh_path import JSON, VIA_ROUTE, call, latency_routes, shape

pytestmark = pytest.mark.anyio
PATH = "/api/v1/login"


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user"])


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per request the fast path answered."""
    seen: list[str] = []
    original = LoginPath._answer

    async def spy(self: LoginPath, *args: Any) -> Any:
        seen.append("fast")
        return await original(self, *args)

    monkeypatch.setattr(LoginPath, "_answer", spy)
    return seen


def body_for(username: str = "alice", password: str = PASSWORD, **extra: object) -> bytes:
    return json.dumps({"username": username, "password": password, **extra}).encode()


async def post(client: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    return await client.post(PATH, content=body, headers={**JSON, **headers})


@pytest.mark.usefixtures("alice")
async def test_the_fast_path_answers_as_the_route(
    client: httpx.AsyncClient, ctx: AppContext, taken: list[str]
) -> None:
    fast = await post(client, body_for())
    assert taken == ["fast"]
    slow = await post(client, body_for(), **VIA_ROUTE)
    assert taken == ["fast"]  # the Origin header sent it to the route
    assert shape(fast) == shape(slow)
    assert shape(fast)[:2] == (200, {"access_token", "token_type", "expires_in", "refresh_token"})
    assert fast.headers["cache-control"] == "no-store"
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {fast.json()['access_token']}"}
    )
    assert me.status_code == 200
    # both started a session, each with its login.succeeded audit row
    events = await ctx.store.list_audit(type="login.succeeded")
    assert len(events) == 2 and all(e.session_id for e in events)
    # refused alike, byte for byte: a wrong password, an unknown user, an invalid name
    for body in (body_for(password="wrong-pass-1"), body_for("nobody"), body_for("bad name!")):
        fast_refusal = await post(client, body)
        slow_refusal = await post(client, body, **VIA_ROUTE)
        assert fast_refusal.status_code == 401
        assert fast_refusal.content == slow_refusal.content
        assert shape(fast_refusal) == shape(slow_refusal)
    assert len(taken) == 4


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (body_for(cookie=True), 200),  # cookie mode: the route sets the cookies
        (body_for(extra="x"), 400),
        (b'{"username": "alice"}', 400),
        (b'{"username": "alice", "password": 5}', 400),
        (body_for(cookie="yes"), 400),
        (body_for(password=""), 400),
        (body_for("a" * 257), 400),
        (body_for(password="p" * 1025), 400),
        (b'{"username": "alice", "password": "x"', 400),
        (b'["alice"]', 400),
    ],
)
@pytest.mark.usefixtures("alice")
async def test_what_is_not_plain_gets_the_routes_answer(
    client: httpx.AsyncClient, taken: list[str], body: bytes, status: int
) -> None:
    response = await post(client, body)
    assert response.status_code == status, response.text
    assert taken == []
    if status == 200:
        assert "refresh_token" not in response.json()
        assert "tokenward_refresh" in response.headers.get("set-cookie", "")
    else:
        assert response.content == (await post(client, body, **VIA_ROUTE)).content


def test_plain_login() -> None:
    assert plain_login(body_for(), cookie_mode=False) == ("alice", PASSWORD)
    assert plain_login(body_for(cookie=False), cookie_mode=True) == ("alice", PASSWORD)
    assert plain_login(body_for(cookie=None), cookie_mode=False) == ("alice", PASSWORD)
    longest = body_for("u" * 256, "p" * 1024)
    assert plain_login(longest, cookie_mode=False) == ("u" * 256, "p" * 1024)
    assert len(longest) <= LoginPath.max_body
    for body, cookie_mode in (
        (body_for(), True),
        (body_for(cookie=True), False),
        (body_for(cookie=0), False),
        (body_for(mfa=None), False),
        (b'{"password": "x"}', False),
        (b"null", False),
        (b"\xff", False),
        (b"", False),
    ):
        assert plain_login(body, cookie_mode=cookie_mode) is None


@pytest.mark.usefixtures("alice")
async def test_a_body_in_chunks(app: FastAPI, taken: list[str]) -> None:
    body = body_for()
    messages = [
        {"type": "http.request", "body": body[:9], "more_body": True},
        {"type": "http.request", "body": body[9:], "more_body": False},
    ]
    answer = await call(app, messages, path=PATH)
    assert answer["status"] == 200 and b'"access_token"' in answer["body"]
    assert taken == ["fast"]


async def test_the_lockout_and_rate_limit_answer_alike(
    make_settings: Callable[..., Settings], clock: Any
) -> None:
    from tokenward.server.app import create_app  # noqa: PLC0415

    application = create_app(make_settings(lockout_threshold=2), clock=clock)
    async with application.router.lifespan_context(application):
        await Accounts(application.state.ctx).create("alice", PASSWORD)
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://a.example") as http:
            wrong = [
                (await post(http, body_for(password="wrong-pass-1"))).status_code for _ in range(2)
            ]
            locked = await post(http, body_for())
            locked_via_route = await post(http, body_for(), **VIA_ROUTE)
    assert wrong == [401, 401]
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert shape(locked) == shape(locked_via_route)
    assert locked.json() == locked_via_route.json()


@pytest.mark.usefixtures("alice")
async def test_an_unexpected_failure_is_a_bare_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Accounts, "sign_in", broken)
    with caplog.at_level(logging.ERROR, logger="tokenward.server"):
        response = await post(client, body_for())
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internals" not in response.text and PASSWORD not in response.text
    assert "unhandled error on POST /api/v1/login" in caplog.text


async def test_the_latency_metric_names_the_route(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await post(client, body_for("nobody"))
    assert PATH in latency_routes(ctx)
