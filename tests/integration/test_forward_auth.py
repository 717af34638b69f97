"""GET /api/v1/verify: forward-auth for nginx auth_request and Traefik ForwardAuth.

In process (httpx on ASGITransport, FrozenClock). The endpoint ahead of the framework
(FastPath) and the Traefik example: test_forward_auth_fast.py; a real nginx in front of a
real ``tokenward serve``: test_nginx.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tokenward import FrozenClock, Issuer
from tokenward.server.context import AppContext
from tokenward.server.routes.verify import header_item, header_value, required_scopes
from tokenward.server.services.accounts import Accounts
from tokenward.store.base import User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio

VERIFY = "/api/v1/verify"
INVALID = 'Bearer realm="tokenward", error="invalid_token"'
NO_CREDENTIALS = 'Bearer realm="tokenward"'
AUTH_HEADERS = ("x-auth-subject", "x-auth-scopes", "x-auth-roles", "x-auth-client-id")


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user", "admin"])


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def mint(ctx: AppContext, sub: str = "svc-7", *, audience: str | None = None, **kwargs: Any) -> str:
    """An access token signed by the server's own issuer (scopes and clients set freely)."""
    kwargs.setdefault("client_id", "billing")
    return ctx.issuer.issue(sub, audience or ctx.settings.effective_audience, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def verify(
    client: httpx.AsyncClient, token: str | None, query: str = "", method: str = "GET"
) -> httpx.Response:
    return await client.request(method, VERIFY + query, headers=bearer(token) if token else {})


def count(ctx: AppContext, result: str) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "tokenward_verifications_total", {"result": result}
    )
    return value or 0.0


def assert_refused(r: httpx.Response, challenge: str) -> None:
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == challenge
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"
    assert not set(AUTH_HEADERS) & set(r.headers)


# -- allowed ---------------------------------------------------------------------------------
async def test_a_login_token_is_allowed_with_its_subject_roles_and_client(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    r = await verify(client, (await login(client))["access_token"])
    assert r.status_code == 200
    assert r.content == b"" and r.headers["content-length"] == "0"
    assert r.headers["x-auth-subject"] == alice.id
    assert r.headers["x-auth-roles"] == "user,admin"
    assert r.headers["x-auth-client-id"] == "tokenward"
    assert r.headers["x-auth-scopes"] == ""  # first-party sessions carry roles, not scopes
    assert r.headers["cache-control"] == "no-store"  # a proxy must ask again every time
    assert r.headers["x-content-type-options"] == "nosniff"  # the middleware still applies
    assert count(ctx, "ok") == 1


async def test_head_answers_like_get_without_a_body_and_nothing_else_is_allowed(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = mint(ctx, scope="read")
    r = await verify(client, token, method="HEAD")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-auth-subject"] == "svc-7" and r.headers["x-auth-scopes"] == "read"
    missing = await verify(client, None, method="HEAD")
    assert missing.status_code == 401 and missing.content == b""
    assert missing.headers["www-authenticate"] == NO_CREDENTIALS
    assert (await verify(client, token, method="POST")).status_code == 405


async def test_verifying_writes_no_audit_event(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    token = (await login(client))["access_token"]
    before = len(await ctx.store.list_audit(limit=1000))
    for _ in range(3):
        assert (await verify(client, token)).status_code == 200
    assert (await verify(client, token + "x")).status_code == 401
    assert len(await ctx.store.list_audit(limit=1000)) == before
    assert count(ctx, "ok") == 3


# -- refused ---------------------------------------------------------------------------------
async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    token = mint(ctx, ttl=60)
    assert (await verify(client, token)).status_code == 200  # and now in the verifier's cache
    clock.advance(60 + 30)  # past exp plus the leeway (R13)
    assert_refused(await verify(client, token), INVALID)
    assert count(ctx, "expired") == 1


async def test_a_logged_out_token_is_refused_at_once(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    pair = await login(client)
    token = pair["access_token"]
    assert (await verify(client, token)).status_code == 200  # cached: revocation still applies
    r = await client.post("/api/v1/logout", headers=bearer(token))
    assert r.status_code == 204
    assert_refused(await verify(client, token), INVALID)
    assert count(ctx, "revoked") == 1


async def test_every_rejection_has_the_same_shape(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    token = mint(ctx)
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    foreign = Issuer(ctx.ring, issuer="https://other.example", clock=clock).issue(
        "svc-7", ctx.settings.effective_audience
    )  # our key, another issuer (R14)
    elsewhere = mint(ctx, audience="https://api.other.example")  # R15
    bodies = set()
    forged = (f"{head}.{payload}.{flipped}", f"{head}.{payload[:-3]}.{sig}", "nope")
    for bad in (*forged, foreign, elsewhere):
        r = await verify(client, bad)
        assert_refused(r, INVALID)
        bodies.add(r.content)
    assert len(bodies) == 1  # R21: nothing says why
    assert count(ctx, "ok") == 0


async def test_no_credentials_get_a_challenge_without_an_error_code(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = mint(ctx)
    assert_refused(await verify(client, None), NO_CREDENTIALS)
    # RFC 6750 §3.1: an unsupported scheme is "no authentication information" too.
    for header in (f"Basic {token}", token, f"Bearer{token}"):
        r = await client.get(VERIFY, headers={"Authorization": header})
        assert_refused(r, NO_CREDENTIALS)
    assert count(ctx, "missing_token") == 4


async def test_the_scheme_is_case_insensitive_but_the_token_must_be_there(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = mint(ctx)
    ok = await client.get(VERIFY, headers={"Authorization": f"bearer  {token}"})
    assert ok.status_code == 200
    assert_refused(await client.get(VERIFY, headers={"Authorization": "Bearer "}), INVALID)


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = mint(ctx)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    assert_refused(await client.get(VERIFY, headers=headers), INVALID)


# -- scopes ----------------------------------------------------------------------------------
async def test_a_required_scope_must_be_granted(client: httpx.AsyncClient, ctx: AppContext) -> None:
    token = mint(ctx, scope="read")
    assert (await verify(client, token, "?scope=read")).status_code == 200
    r = await verify(client, token, "?scope=write")
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        'Bearer realm="tokenward", error="insufficient_scope", scope="write"'
    )
    assert r.json()["error"] == "insufficient_scope"
    assert not set(AUTH_HEADERS) & set(r.headers)
    assert count(ctx, "insufficient_scope") == 1


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?scope=read+write", 200),
        ("?scope=write%20read", 200),
        ("?scope=read&scope=write", 200),
        ("?scope=read+write+read", 200),
        ("?scope=read+admin", 403),
        ("?scope=admin&scope=read", 403),
        ("?other=1", 200),
    ],
)
async def test_every_named_scope_is_required(
    client: httpx.AsyncClient, ctx: AppContext, query: str, status: int
) -> None:
    token = mint(ctx, scope="read write")
    assert (await verify(client, token, query)).status_code == status


async def test_the_challenge_names_every_required_scope_once(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    r = await verify(client, mint(ctx, scope="read"), "?scope=read+admin&scope=audit+admin")
    assert r.status_code == 403
    assert r.headers["www-authenticate"].endswith('scope="read admin audit"')


async def test_an_invalid_token_is_401_even_where_a_scope_is_required(
    client: httpx.AsyncClient,
) -> None:
    assert_refused(await verify(client, "nope", "?scope=read"), INVALID)
    assert_refused(await verify(client, None, "?scope=read"), NO_CREDENTIALS)


@pytest.mark.parametrize(
    "query",
    ["?scope=a%22b", "?scope=a%5Cb", "?scope=caf%C3%A9", "?scope=a%0D%0Ab", "?scope=" + "x" * 3000],
)
async def test_a_malformed_scope_parameter_fails_closed(
    client: httpx.AsyncClient, ctx: AppContext, query: str
) -> None:
    r = await verify(client, mint(ctx, scope='a"b a\\b'), query)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert not set(AUTH_HEADERS) & set(r.headers)


def test_required_scopes_parse() -> None:
    assert required_scopes(b"") == ()
    assert required_scopes(b"scope=b+a&x=y&scope=a+c") == ("b", "a", "c")
    assert required_scopes(b"scope=&scope=+") == ()
    assert required_scopes(b"scope=%22") is None


# -- header values ---------------------------------------------------------------------------
async def test_scopes_and_client_pass_through_unchanged_when_plain(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = mint(ctx, scope="read  write:all", client_id="svc.billing-1", claims={"roles": []})
    r = await verify(client, token)
    assert r.headers["x-auth-scopes"] == "read write:all"
    assert r.headers["x-auth-client-id"] == "svc.billing-1"
    assert r.headers["x-auth-roles"] == ""


async def test_claims_cannot_inject_headers(client: httpx.AsyncClient, ctx: AppContext) -> None:
    roles = ["ops\r\nX-Auth-Subject: root", "a,b", "100%", "café", 7, None]
    token = mint(ctx, "alice\r\nSet-Cookie: x=1", claims={"roles": roles})
    r = await verify(client, token)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert r.headers.get_list("x-auth-subject") == ["alice%0D%0ASet-Cookie:%20x=1"]
    assert unquote(r.headers["x-auth-subject"]) == "alice\r\nSet-Cookie: x=1"
    encoded = r.headers["x-auth-roles"].split(",")
    assert [unquote(v) for v in encoded] == roles[:4]  # non-strings are no roles


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain-Value_1.2~!$&'*+/:;=?@[]^`{|}", b"plain-Value_1.2~!$&'*+/:;=?@[]^`{|}"),
        ("a,b", b"a,b"),
        ("50%", b"50%25"),
        ("two words", b"two%20words"),
        ("\x00\t\x7f", b"%00%09%7F"),
        ("ü", b"%C3%BC"),
    ],
)
def test_header_value(value: str, expected: bytes) -> None:
    assert header_value(value) == expected
    assert unquote(expected.decode()) == value
    item = header_item(value)  # a list item encodes its separator as well
    assert item == expected.replace(b",", b"%2C") and unquote(item.decode()) == value
