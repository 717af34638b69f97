"""Errors on the wire: RFC 9457 problems for unknown routes, wrong methods and bad input —
never a 5xx for anything a client sends — and a bare 500, without internals, for a bug."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tokenward.errors import KeyStoreError
from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts

from .conftest import ISSUER, PASSWORD

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
SECRET_DETAIL = "secret-internal-detail /srv/tokenward/keys.json"


def assert_problem(r: httpx.Response, status: int, error: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, object] = r.json()
    assert body["status"] == status and body["error"] == error
    assert body["type"] == "about:blank" and isinstance(body["title"], str)
    return body


@pytest.fixture
async def buggy(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app plus routes with bugs; the transport answers 500 like a real server."""

    async def crash() -> None:
        raise RuntimeError(SECRET_DETAIL)

    async def unexposed() -> None:
        raise KeyStoreError(SECRET_DETAIL)

    app.add_api_route("/test/crash", crash)
    app.add_api_route("/test/unexposed", unexposed)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


# -- routing -------------------------------------------------------------------------------
async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/api/v1", "/api/v2/login", "/.well-known/x", "/%00", "/api/v1/login/"):
        assert_problem(await client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/login", "POST"),
        ("PUT", "/healthz", "GET"),
        ("DELETE", "/oauth2/token", "POST"),
    ],
)
async def test_wrong_method_is_a_405_problem_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path)
    assert_problem(r, 405, "method_not_allowed")
    assert allow in r.headers["allow"]


# -- bad input: 4xx, never 5xx -------------------------------------------------------------
NESTED = b"[" * 30_000 + b"]" * 30_000  # under the body limit; deep enough for RecursionError
BAD_JSON = [
    b"",
    b"{bad",
    b"null",
    b"[]",
    b'"alice"',
    b"{}",
    b'{"username": "alice"}',
    b'{"username": 1, "password": "x"}',
    b'{"username": ["alice"], "password": {"a": 1}}',
    b'{"username": "alice", "password": "x", "admin": true}',
    b'{"username": NaN, "password": Infinity}',
    b'{"username": 1e99999, "password": "x"}',
    b'{"username": "alice", "username": "bob", "password": "x"}',
    b'{"username": "\xff\xfe", "password": "x"}',
    b'\xef\xbb\xbf{"username": "alice", "password": "x"}',
    b'{"username": "a\\u0000b", "password": "x"}',
    b'{"username": "\\ud800", "password": "\\udfff"}',
    b'{"username": "' + b"a" * 5000 + b'", "password": "x"}',
    NESTED,
]


async def test_malformed_login_bodies_are_4xx(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await Accounts(ctx).create("alice", PASSWORD)
    answers = {}
    for body in BAD_JSON:  # one app for all: a 5xx must not poison the next request either
        r = await client.post(
            "/api/v1/login", content=body, headers={"content-type": "application/json"}
        )
        answers[body[:24]] = r.status_code
    assert {k: v for k, v in answers.items() if v not in (400, 401)} == {}


async def test_malformed_json_is_a_400_problem_that_does_not_echo_input(
    client: httpx.AsyncClient,
) -> None:
    secret = "hunter2-do-not-echo"
    r = await client.post(
        "/api/v1/login",
        content=b'{"username": 5, "password": "%s"' % secret.encode(),
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 400, "invalid_request")
    assert secret not in r.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_wrong_content_type_is_4xx(client: httpx.AsyncClient, content_type: str) -> None:
    r = await client.post(
        "/api/v1/login",
        content=b'{"username":"a","password":"b"}',
        headers={"content-type": content_type},
    )
    assert 400 <= r.status_code < 500


BAD_FORMS = [b"", b"%", b"grant_type=%ff", b"a=1&a=2", b"&" * 100, b"grant_type=" + b"x" * 9000]


async def test_malformed_oauth_forms_are_4xx(client: httpx.AsyncClient) -> None:
    for body in BAD_FORMS:
        r = await client.post(
            "/oauth2/token",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert 400 <= r.status_code < 500, (body[:24], r.text)
        assert "error" in r.json()


BAD_AUTHORIZATION = [
    "",
    "Bearer",
    "Bearer ",
    "Basic abc",
    "Bearer a.b",
    "Bearer " + "a" * 10_000,
    "Bearer \x7f",
]


async def test_garbage_credentials_are_401(client: httpx.AsyncClient) -> None:
    for authorization in BAD_AUTHORIZATION:
        r = await client.get("/api/v1/me", headers={"authorization": authorization})
        assert r.status_code == 401, authorization[:24]
        assert r.headers["www-authenticate"].startswith("Bearer")


# -- bugs ----------------------------------------------------------------------------------
async def test_an_unexpected_exception_is_a_bare_500(
    buggy: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="tokenward.server"):
        r = await buggy.get("/test/crash")
    body = assert_problem(r, 500, "server_error")
    assert body["detail"] == "internal error"
    for leak in (SECRET_DETAIL, "Traceback", "RuntimeError", "File ", ".py"):
        assert leak not in r.text
    # ... while the operator gets the whole story in the log.
    assert any(rec.exc_info and SECRET_DETAIL in str(rec.exc_info[1]) for rec in caplog.records)


async def test_an_unexposed_library_error_is_a_bare_500(buggy: httpx.AsyncClient) -> None:
    r = await buggy.get("/test/unexposed")
    body = assert_problem(r, 500, "server_error")
    assert body["detail"] == "internal error"
    assert SECRET_DETAIL not in r.text and "KeyStoreError" not in r.text


async def test_the_app_keeps_serving_after_a_500(buggy: httpx.AsyncClient) -> None:
    assert (await buggy.get("/test/crash")).status_code == 500
    assert (await buggy.get("/healthz")).status_code == 200
