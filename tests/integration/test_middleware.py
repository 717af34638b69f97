"""Security headers on every response, the request body limit, CORS for configured origins."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward import FrozenClock
from tokenward.server.app import create_app
from tokenward.server.context import AppContext
from tokenward.server.middleware import STRICT_CSP
from tokenward.server.services.accounts import Accounts
from tokenward.server.settings import Settings

from .conftest import ISSUER, PASSWORD, http_scope

pytestmark = pytest.mark.anyio

HEADERS = {
    "content-security-policy": STRICT_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"
APP_ORIGIN, EVIL_ORIGIN = "https://app.example", "https://evil.example"
LIMIT = 64 * 1024  # the default max_body_bytes


@contextlib.asynccontextmanager
async def running(
    make_settings: Callable[..., Settings], clock: FrozenClock, **over: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(**over), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


@pytest.fixture
async def lenient(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the fixture app with a route that fails, answering 500 like a server."""

    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


def assert_security_headers(r: httpx.Response, *, hsts: bool = True) -> None:
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, (r.status_code, name)
    assert r.headers.get("strict-transport-security") == (HSTS if hsts else None)


# -- headers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/.well-known/jwks.json", 200),
        ("GET", "/api/v1/me", 401),
        ("GET", "/no/such/route", 404),
        ("DELETE", "/api/v1/login", 405),
        ("GET", "/test/boom", 500),
    ],
)
async def test_security_headers_on_every_response(
    lenient: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    r = await lenient.request(method, path)
    assert r.status_code == status
    assert_security_headers(r)


async def test_security_headers_on_a_413(lenient: httpx.AsyncClient) -> None:
    r = await lenient.post("/api/v1/login", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
    assert_security_headers(r)


async def test_hsts_only_for_an_https_issuer(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    async with running(make_settings, clock, issuer="http://localhost:8000") as http:
        for path in ("/healthz", "/nope"):
            r = await http.get(path)
            assert_security_headers(r, hsts=False)


async def test_docs_get_a_csp_that_allows_exactly_their_scripts(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    csp = dict(
        [*d.strip().split(" ", 1), ""][:2] for d in r.headers["content-security-policy"].split(";")
    )
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    for src in re.findall(r'<script src="([^"]+)"', r.text):
        assert any(src.startswith(allowed) for allowed in csp["script-src"].split())
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == "'self'"  # the page fetches /openapi.json, nothing else
    assert "https:" not in csp["img-src"].split()  # named hosts only
    assert r.headers["x-frame-options"] == "DENY"
    spec = await client.get("/openapi.json")
    assert spec.headers["content-security-policy"] == STRICT_CSP
    redirect = await client.get("/docs/oauth2-redirect")
    script = re.findall(r"<script>(.*?)</script>", redirect.text, re.DOTALL)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in redirect.headers["content-security-policy"]


# -- body limit ----------------------------------------------------------------------------
def login_body(size: int) -> bytes:
    body = b'{"username": "alice", "password": "%s"}' % PASSWORD.encode()
    return body + b" " * (size - len(body))


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


JSON = {"content-type": "application/json"}


async def test_declared_length_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/login", content=login_body(LIMIT + 1), headers=JSON)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["error"] == "request_too_large"


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await Accounts(ctx).create("alice", PASSWORD)
    r = await client.post("/api/v1/login", content=chunks(login_body(LIMIT + 1)), headers=JSON)
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json()["error"] == "request_too_large"
    form = chunks(b"grant_type=client_credentials&x=" + b"a" * LIMIT)
    r = await client.post(
        "/oauth2/token",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


async def test_a_body_of_exactly_the_limit_passes(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await Accounts(ctx).create("alice", PASSWORD)
    declared = await client.post("/api/v1/login", content=login_body(LIMIT), headers=JSON)
    assert declared.status_code == 200, declared.text
    streamed = await client.post("/api/v1/login", content=chunks(login_body(LIMIT)), headers=JSON)
    assert streamed.status_code == 200, streamed.text


async def test_a_malformed_content_length_is_400(app: FastAPI) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope("POST", "/api/v1/login", [(b"content-length", b"2, 99999999")])
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]


# -- CORS ----------------------------------------------------------------------------------
def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization",
    }


async def test_cors_allows_only_configured_origins(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    async with running(make_settings, clock, cors_origins=[APP_ORIGIN]) as http:
        ok = await http.options("/api/v1/login", headers=preflight(APP_ORIGIN))
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP_ORIGIN
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert_security_headers(ok)

        denied = await http.options("/api/v1/login", headers=preflight(EVIL_ORIGIN))
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers

        simple = await http.get("/healthz", headers={"Origin": APP_ORIGIN})
        assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "origin" in simple.headers["vary"].lower()
        other = await http.get("/healthz", headers={"Origin": EVIL_ORIGIN})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_without_configured_origins(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"Origin": APP_ORIGIN})
    assert "access-control-allow-origin" not in r.headers
    pre = await client.options("/api/v1/login", headers=preflight(APP_ORIGIN))
    assert pre.status_code == 405
    assert "access-control-allow-origin" not in pre.headers


def test_a_wildcard_origin_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="CORS origin"):
        make_settings(cors_origins=["*"])
