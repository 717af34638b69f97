"""RefreshPath (routes/refresh.py, on routes/plain.py): the plain POST /api/v1/refresh
answered ahead of FastAPI.

It must answer exactly as the route does, and hand every other request, body intact, to
the route. The route is reached here with an ``Origin`` header (no CORS configured: no
CORS headers either), which the fast path never takes.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward.server.context import AppContext
from tokenward.server.routes.refresh import RefreshPath, plain_refresh_token
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.sessions import Sessions
from tokenward.store.base import User

from .conftest import PASSWORD, http_scope
from .test_refresh import assert_invalid_grant, login, me

pytestmark = pytest.mark.anyio
PATH = "/api/v1/refresh"
VIA_ROUTE = {"Origin": "https://elsewhere.example"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user"])


async def post(client: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    return await client.post(PATH, content=body, headers={**JSON, **headers})


def body_for(token: str) -> bytes:
    return b'{"refresh_token": "' + token.encode() + b'"}'


def shape(response: httpx.Response) -> tuple[int, set[str], dict[str, str]]:
    """Status, body keys, and the headers that do not vary per response."""
    keep = ("cache-control", "pragma", "content-type", "x-content-type-options")
    headers = {k: v for k, v in response.headers.items() if k in keep}
    return response.status_code, set(response.json()), headers


@pytest.mark.usefixtures("alice")
async def test_the_fast_path_answers_as_the_route(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = RefreshPath._answer

    async def spy(self: RefreshPath, *args: Any) -> Any:
        seen.append("fast")
        return await original(self, *args)

    monkeypatch.setattr(RefreshPath, "_answer", spy)
    first = (await login(client))["refresh_token"]
    fast = await post(client, body_for(first))
    assert seen == ["fast"]
    slow = await post(client, body_for(fast.json()["refresh_token"]), **VIA_ROUTE)
    assert seen == ["fast"]  # the Origin header sent it to the route
    assert shape(fast) == shape(slow)
    assert shape(fast)[:2] == (200, {"access_token", "token_type", "expires_in", "refresh_token"})
    assert fast.headers["cache-control"] == "no-store"
    assert (await me(client, fast.json()["access_token"])).status_code == 200
    # refused alike: the replayed first token (reuse) and an unknown one
    for token in (first, "x" * 43):
        fast_refusal, slow_refusal = await post(client, body_for(token)), None
        slow_refusal = await post(client, body_for(token), **VIA_ROUTE)
        assert_invalid_grant(fast_refusal)
        assert fast_refusal.content == slow_refusal.content
        assert shape(fast_refusal) == shape(slow_refusal)
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b'{"refresh_token": 5}', "application/json", 400, "invalid_request"),
        (b'{"refresh_token": "abc", "x": 1}', "application/json", 400, "invalid_request"),
        (b'{"refresh_token": ""}', "application/json", 400, "invalid_request"),
        (b"{}", "application/json", 400, "invalid_request"),  # and no cookie either
        (b'{"refresh_token": "abc"', "application/json", 400, "invalid_request"),
        (b'["refresh_token"]', "application/json", 400, "invalid_request"),
        (b'{"refresh_token": "abc"}', "application/json; charset=utf-8", 400, "invalid_grant"),
        (b'{"refresh_token": "abc"}', "APPLICATION/JSON", 400, "invalid_grant"),
    ],
)
async def test_what_is_not_plain_gets_the_routes_answer(
    client: httpx.AsyncClient, body: bytes, content_type: str, status: int, error: str
) -> None:
    response = await client.post(PATH, content=body, headers={"Content-Type": content_type})
    via_route = await client.post(
        PATH, content=body, headers={"Content-Type": content_type, **VIA_ROUTE}
    )
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert response.content == via_route.content


def test_plain_refresh_token() -> None:
    assert plain_refresh_token(b'{"refresh_token": "abc"}') == "abc"
    assert plain_refresh_token(b'{"refresh_token": "' + b"a" * 4096 + b'"}') == "a" * 4096
    for body in (
        b'{"refresh_token": "' + b"a" * 4097 + b'"}',
        b'{"refresh_token": null}',
        b'{"refresh_token": "a", "cookie": true}',
        b"null",
        b"\xff",
        b"",
    ):
        assert plain_refresh_token(body) is None


async def call(
    app: FastAPI, messages: list[dict[str, Any]], path: str = PATH, **headers: str
) -> dict[str, Any]:
    """One raw ASGI request to ``path`` whose body arrives as ``messages``."""
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in {**JSON, **headers}.items()]
    scope = http_scope("POST", path, raw)
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {"status": start["status"], "body": b"".join(m.get("body", b"") for m in sent[1:])}


@pytest.mark.usefixtures("alice")
async def test_a_body_in_chunks(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = body_for((await login(client))["refresh_token"])
    chunks = [body[:7], body[7:20], body[20:]]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < 2} for i, c in enumerate(chunks)
    ]
    answer = await call(app, messages)
    assert answer["status"] == 200 and b'"access_token"' in answer["body"]


async def test_a_body_over_the_limit_meets_the_routes_limit(app: FastAPI, ctx: AppContext) -> None:
    limit = ctx.settings.max_body_bytes
    big = b'{"refresh_token": "' + b"a" * 4000 + b'"}' + b" " * limit
    answer = await call(app, [{"type": "http.request", "body": big}])
    assert answer["status"] == 413


@pytest.mark.parametrize(("length", "status"), [("2, 99", 400), ("-1", 400), ("999999999", 413)])
async def test_a_bad_or_too_large_content_length_meets_the_routes_limit(
    app: FastAPI, length: str, status: int
) -> None:
    messages = [{"type": "http.request", "body": body_for("x" * 43)}]
    answer = await call(app, messages, **{"Content-Length": length})
    assert answer == await call(app, messages, **{"Content-Length": length, **VIA_ROUTE})
    assert answer["status"] == status


async def test_a_client_gone_before_its_body_ends(app: FastAPI) -> None:
    messages = [{"type": "http.request", "body": b'{"refresh', "more_body": True}]
    answer = await call(app, messages)
    assert answer == await call(app, messages, **VIA_ROUTE)  # the route decided both
    assert answer["status"] == 400


@pytest.mark.usefixtures("alice")
async def test_an_unexpected_failure_is_a_bare_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = (await login(client))["refresh_token"]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Sessions, "refresh", broken)
    with caplog.at_level(logging.ERROR, logger="tokenward.server"):
        response = await post(client, body_for(token))
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "unhandled error on POST /api/v1/refresh" in caplog.text


async def test_the_rate_limit_applies(
    make_settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenward.server.app import create_app  # noqa: PLC0415

    application = create_app(make_settings(token_rate_per_ip="2/minute"), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="https://a.example") as http:
            statuses = [(await post(http, body_for("x" * 43))).status_code for _ in range(3)]
            limited = await post(http, body_for("x" * 43))
    assert statuses == [400, 400, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


async def test_the_latency_metric_names_the_route(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await post(client, body_for("x" * 43))
    assert PATH in latency_routes(ctx)


def latency_routes(ctx: AppContext) -> set[str]:
    """The route labels the latency metric has counted requests under."""
    return {
        s.labels["route"]
        for metric in ctx.metrics.latency.collect()
        for s in metric.samples
        if s.name.endswith("_count")
    }
