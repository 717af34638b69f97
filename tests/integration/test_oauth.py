"""OAuth endpoints: /oauth2/token (RFC 6749), /oauth2/introspect (RFC 7662), /oauth2/revoke (RFC 7009).

Clients are registered through services.clients, users and sessions through the account
and session services; time travels with the FrozenClock.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.errors import BadRequest, Conflict
from tokenward.server.app import create_app
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.ratelimit import Limiter
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.clients import Clients
from tokenward.server.services.sessions import Sessions, TokenPair
from tokenward.server.settings import Settings
from tokenward.store.base import User

from .conftest import ISSUER, PASSWORD

pytestmark = pytest.mark.anyio

FORM = "application/x-www-form-urlencoded"
REQ = RequestInfo(ip="203.0.113.7", user_agent="tests")


# -- helpers -------------------------------------------------------------------------------
def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def post(
    http: httpx.AsyncClient, path: str, data: dict[str, str], auth: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(f"/oauth2/{path}", data=data, headers=auth or {})


def oauth_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == error, body
    assert r.headers["cache-control"] == "no-store"
    return body


def header(token: str) -> dict[str, Any]:
    seg = token.split(".", maxsplit=1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return decoded


class Registered:
    """The clients every test here uses, with their one-time secrets."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    def auth(self, client_id: str) -> dict[str, str]:
        return basic(client_id, self.secrets[client_id])


@pytest.fixture
async def clients(ctx: AppContext) -> Registered:
    svc = Clients(ctx)
    made: dict[str, str] = {}
    for cid, scopes, grants in (
        ("svc", ["read", "write"], ["client_credentials"]),
        ("rs", ["introspect"], ["client_credentials"]),
        ("app1", ["read", "write"], ["refresh_token"]),
        ("other", ["read"], ["refresh_token", "client_credentials"]),
    ):
        _, secret = await svc.create(cid, cid.upper(), scopes, grants)
        assert secret is not None
        made[cid] = secret
    await svc.create("spa", "SPA", ["read"], ["refresh_token"], confidential=False)
    return Registered(made)


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["reader"])


async def session(ctx: AppContext, user: User, client_id: str, scope: str = "read") -> TokenPair:
    return await Sessions(ctx).start(user, client_id=client_id, scope=scope, request=REQ)


async def introspect(
    http: httpx.AsyncClient, clients: Registered, token: str, by: str = "rs", **extra: str
) -> dict[str, Any]:
    r = await post(http, "introspect", {"token": token, **extra}, clients.auth(by))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


# -- client_credentials (RFC 6749 §4.4) ----------------------------------------------------
async def test_client_credentials_issues_a_token_for_the_client(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    r = await post(
        client, "token", {"grant_type": "client_credentials", "scope": "read"}, clients.auth("svc")
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"
    assert body["expires_in"] == ctx.settings.access_ttl
    assert "refresh_token" not in body  # §4.4.3
    claims = ctx.verifier.verify(body["access_token"])
    assert claims["sub"] == claims["client_id"] == "svc"
    assert claims["aud"] == ctx.settings.effective_audience
    assert claims["iss"] == ISSUER
    assert claims["scope"] == "read"
    assert header(body["access_token"])["typ"] == "at+jwt"


async def test_client_credentials_defaults_to_the_registered_scopes_and_accepts_post_auth(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "svc",
        "client_secret": clients.secrets["svc"],
    }
    r = await post(client, "token", form)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "read write"
    assert ctx.verifier.verify(r.json()["access_token"])["scope"] == "read write"


async def test_client_credentials_scope_beyond_registration_is_invalid_scope(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    for scope in ("read admin", "admin", 'bad"scope'):
        r = await post(
            client,
            "token",
            {"grant_type": "client_credentials", "scope": scope},
            clients.auth("svc"),
        )
        oauth_error(r, 400, "invalid_scope")


@pytest.mark.parametrize(
    "auth",
    [
        basic("svc", "wrong-secret"),
        basic("nobody", "whatever"),
        basic("svc", ""),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer something"},
    ],
)
async def test_bad_client_credentials_are_invalid_client_401_with_basic_challenge(
    client: httpx.AsyncClient, clients: Registered, auth: dict[str, str]
) -> None:
    r = await post(client, "token", {"grant_type": "client_credentials"}, auth)
    oauth_error(r, 401, "invalid_client")
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_wrong_secret_by_post_is_invalid_client(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    form = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "nope"}
    oauth_error(await post(client, "token", form), 401, "invalid_client")
    # a confidential client may not present itself by id alone
    form = {"grant_type": "client_credentials", "client_id": "svc"}
    oauth_error(await post(client, "token", form), 401, "invalid_client")


async def test_public_client_may_not_use_client_credentials(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    r = await post(client, "token", {"grant_type": "client_credentials", "client_id": "spa"})
    oauth_error(r, 400, "unauthorized_client")
    with pytest.raises(BadRequest):  # and cannot even be registered for it
        await Clients(ctx).create("spa2", "", ["read"], ["client_credentials"], confidential=False)


async def test_a_client_id_may_not_equal_a_user_id(ctx: AppContext, alice: User) -> None:
    """RFC 9068 §6: a client_credentials token (sub = client_id) must not pass for a user."""
    with pytest.raises(Conflict):
        await Clients(ctx).create(alice.id, "impostor", [], ["client_credentials"])
    assert await ctx.store.get_client(alice.id) is None


@pytest.mark.parametrize("client_id", ["", "a b", "x" * 65, "é", "../etc"])
async def test_client_ids_are_validated(ctx: AppContext, client_id: str) -> None:
    with pytest.raises(BadRequest):
        await Clients(ctx).create(client_id, "", [], ["client_credentials"])


async def test_grant_not_registered_for_the_client_is_unauthorized_client(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    r = await post(client, "token", {"grant_type": "client_credentials"}, clients.auth("app1"))
    oauth_error(r, 400, "unauthorized_client")


async def test_unknown_grant_type_is_unsupported(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    for grant in ("password", "authorization_code", "urn:x"):
        r = await post(client, "token", {"grant_type": grant}, clients.auth("svc"))
        oauth_error(r, 400, "unsupported_grant_type")


async def test_two_client_authentication_methods_are_refused(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    form = {"grant_type": "client_credentials", "client_secret": clients.secrets["svc"]}
    oauth_error(await post(client, "token", form, clients.auth("svc")), 400, "invalid_request")


# -- refresh_token (RFC 6749 §6) -----------------------------------------------------------
async def test_refresh_grant_rotates_for_the_owning_client(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    r = await post(
        client,
        "token",
        {"grant_type": "refresh_token", "refresh_token": pair.refresh_token},
        clients.auth("app1"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["refresh_token"] != pair.refresh_token
    assert body["token_type"] == "Bearer"
    claims = ctx.verifier.verify(body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["sid"]) == (alice.id, "app1", pair.family_id)
    # the presented token was used up
    r = await post(
        client,
        "token",
        {"grant_type": "refresh_token", "refresh_token": pair.refresh_token},
        clients.auth("app1"),
    )
    oauth_error(r, 400, "invalid_grant")


async def test_refresh_grant_for_a_public_client_by_id(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "spa")
    form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token, "client_id": "spa"}
    r = await post(client, "token", form)
    assert r.status_code == 200, r.text
    assert ctx.verifier.verify(r.json()["access_token"])["client_id"] == "spa"


async def test_refresh_token_is_bound_to_its_client(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
    oauth_error(await post(client, "token", form, clients.auth("other")), 400, "invalid_grant")
    spa = {**form, "client_id": "spa"}
    oauth_error(await post(client, "token", spa), 400, "invalid_grant")
    # the foreign attempts did not consume it: its own client still refreshes
    r = await post(client, "token", form, clients.auth("app1"))
    assert r.status_code == 200, r.text


async def test_access_token_presented_as_refresh_token_is_invalid_grant(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    form = {"grant_type": "refresh_token", "refresh_token": pair.access_token}
    oauth_error(await post(client, "token", form, clients.auth("app1")), 400, "invalid_grant")


async def test_refresh_grant_without_a_token_is_invalid_request(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    r = await post(client, "token", {"grant_type": "refresh_token"}, clients.auth("app1"))
    oauth_error(r, 400, "invalid_request")


async def test_token_endpoint_is_rate_limited_per_ip(
    make_settings: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    settings: Settings = make_settings(token_rate_per_ip="2/minute", data_dir=tmp_path / "limited")
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("198.51.100.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            codes = [
                (await post(http, "token", {"grant_type": "password"})).status_code
                for _ in range(3)
            ]
            assert codes[:2] == [400, 400]
            assert codes[2] == 429
            last = await post(http, "token", {"grant_type": "password"})
            assert int(last.headers["retry-after"]) >= 1


# -- introspection (RFC 7662) --------------------------------------------------------------
async def test_introspect_valid_user_access_token(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    body = await introspect(client, clients, pair.access_token)
    claims = ctx.verifier.verify(pair.access_token)
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["username"] == "alice"
    assert body["sub"] == alice.id
    assert body["client_id"] == "app1"
    assert body["scope"] == "read"
    assert body["iss"] == ISSUER
    assert body["aud"] == ctx.settings.effective_audience
    for name in ("exp", "iat", "jti"):
        assert body[name] == claims[name]


async def test_introspect_client_credentials_token(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    r = await post(client, "token", {"grant_type": "client_credentials"}, clients.auth("svc"))
    body = await introspect(
        client, clients, r.json()["access_token"], token_type_hint="access_token"
    )
    assert body["active"] is True
    assert body["sub"] == body["client_id"] == "svc"
    assert "username" not in body


async def test_introspect_expired_access_token_is_inactive(
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    clients: Registered,
    alice: User,
) -> None:
    pair = await session(ctx, alice, "app1")
    assert (await introspect(client, clients, pair.access_token))["active"] is True
    clock.advance(ctx.settings.access_ttl + 31)  # past exp and the 30 s leeway
    assert await introspect(client, clients, pair.access_token) == {"active": False}


async def test_introspect_revoked_and_disabled_user_tokens_are_inactive(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    first = await session(ctx, alice, "app1")
    second = await session(ctx, alice, "app1")
    r = await post(client, "revoke", {"token": first.access_token}, clients.auth("app1"))
    assert r.status_code == 200
    assert await introspect(client, clients, first.access_token) == {"active": False}
    assert (await introspect(client, clients, second.access_token))["active"] is True
    await Accounts(ctx).set_disabled(alice.id, True, request=REQ)
    assert await introspect(client, clients, second.access_token) == {"active": False}


async def test_introspection_asks_the_store_not_only_this_nodes_view(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    """Another node bumped alice's token version / disabled her: the store knows first."""
    pair = await session(ctx, alice, "app1")
    await ctx.store.bump_token_version(alice.id)  # not applied to this node's view
    assert ctx.verifier.verify(pair.access_token)["sub"] == alice.id
    assert await introspect(client, clients, pair.access_token) == {"active": False}
    bob = await Accounts(ctx).create("bob", PASSWORD)
    other = await session(ctx, bob, "app1")
    await ctx.store.update_user(bob.id, disabled=True)
    assert await introspect(client, clients, other.access_token) == {"active": False}
    assert await introspect(client, clients, other.refresh_token, by="app1") == {"active": False}


@pytest.mark.parametrize(
    "garbage",
    [
        "x",
        "a.b.c",
        "a.b.c.d.e",
        "eyJhbGciOiJub25lIn0.e30.",
        "\u00e9\u00e9",
        " " * 3 + "x",
        "A" * 8000,
    ],
)
async def test_introspect_garbage_is_inactive(
    client: httpx.AsyncClient, clients: Registered, garbage: str
) -> None:
    for hint in ({}, {"token_type_hint": "refresh_token"}, {"token_type_hint": "nonsense"}):
        assert await introspect(client, clients, garbage, **hint) == {"active": False}


async def test_introspect_refresh_token_only_for_its_client_and_only_while_active(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1", scope="read write")
    body = await introspect(
        client, clients, pair.refresh_token, by="app1", token_type_hint="refresh_token"
    )
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert (body["client_id"], body["sub"], body["scope"]) == ("app1", alice.id, "read write")
    assert body["exp"] > ctx.clock()
    # without the hint too (the search is extended, RFC 7662 §2.1)
    assert (await introspect(client, clients, pair.refresh_token, by="app1"))["active"] is True
    # another client learns nothing about it
    assert await introspect(client, clients, pair.refresh_token, by="rs") == {"active": False}
    # once rotated the old token is used: inactive; the new one is active
    r = await post(
        client,
        "token",
        {"grant_type": "refresh_token", "refresh_token": pair.refresh_token},
        clients.auth("app1"),
    )
    new = r.json()["refresh_token"]
    assert await introspect(client, clients, pair.refresh_token, by="app1") == {"active": False}
    assert (await introspect(client, clients, new, by="app1"))["active"] is True
    # family revoked: inactive
    await Sessions(ctx).end(pair.family_id, reason="logout", request=REQ)
    assert await introspect(client, clients, new, by="app1") == {"active": False}


async def test_introspect_expired_refresh_family_is_inactive(
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    clients: Registered,
    alice: User,
) -> None:
    pair = await session(ctx, alice, "app1")
    clock.advance(ctx.settings.refresh_idle_ttl + 1)
    assert await introspect(client, clients, pair.refresh_token, by="app1") == {"active": False}


async def test_introspection_requires_a_confidential_client(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    r = await post(client, "introspect", {"token": pair.access_token})
    oauth_error(r, 401, "invalid_client")
    assert r.headers["www-authenticate"].startswith("Basic")
    r = await post(client, "introspect", {"token": pair.access_token, "client_id": "spa"})
    oauth_error(r, 401, "invalid_client")
    r = await post(client, "introspect", {"token": pair.access_token}, basic("rs", "wrong"))
    oauth_error(r, 401, "invalid_client")
    assert "active" not in r.text


# -- revocation (RFC 7009) -----------------------------------------------------------------
async def test_revoking_a_refresh_token_ends_its_family(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    r = await post(
        client,
        "revoke",
        {"token": pair.refresh_token, "token_type_hint": "refresh_token"},
        clients.auth("app1"),
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
    oauth_error(await post(client, "token", form, clients.auth("app1")), 400, "invalid_grant")
    # the access token minted with it dies too
    assert await introspect(client, clients, pair.access_token) == {"active": False}
    family = await ctx.store.get_family(pair.family_id)
    assert family is not None and family.revoked_at is not None
    # revoking again is still 200
    r = await post(client, "revoke", {"token": pair.refresh_token}, clients.auth("app1"))
    assert r.status_code == 200


async def test_revoking_an_access_token_denies_its_jti(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    r = await post(client, "token", {"grant_type": "client_credentials"}, clients.auth("svc"))
    token = r.json()["access_token"]
    jti = ctx.verifier.verify(token)["jti"]
    r = await post(
        client, "revoke", {"token": token, "token_type_hint": "refresh_token"}, clients.auth("svc")
    )
    assert r.status_code == 200
    assert await introspect(client, clients, token) == {"active": False}
    assert jti in {j for j, _ in await ctx.store.denied(ctx.clock())}  # durable


async def test_revoking_unknown_or_invalid_tokens_is_200(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    for token in ("unknown", "a.b.c", "x" * 600):
        r = await post(client, "revoke", {"token": token}, clients.auth("svc"))
        assert r.status_code == 200, r.text


async def test_a_client_cannot_revoke_another_clients_tokens(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    for token in (pair.refresh_token, pair.access_token):
        r = await post(client, "revoke", {"token": token}, clients.auth("other"))
        oauth_error(r, 400, "unauthorized_client")
    assert (await introspect(client, clients, pair.access_token))["active"] is True
    assert (await introspect(client, clients, pair.refresh_token, by="app1"))["active"] is True


async def test_revocation_requires_client_authentication(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    oauth_error(await post(client, "revoke", {"token": pair.refresh_token}), 401, "invalid_client")
    oauth_error(
        await post(client, "revoke", {"token": pair.refresh_token}, basic("app1", "wrong")),
        401,
        "invalid_client",
    )
    assert (await introspect(client, clients, pair.refresh_token, by="app1"))["active"] is True


async def test_public_client_revokes_its_own_refresh_token(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "spa")
    r = await post(client, "revoke", {"token": pair.refresh_token, "client_id": "spa"})
    assert r.status_code == 200
    family = await ctx.store.get_family(pair.family_id)
    assert family is not None and family.revoked_at is not None


# -- malformed requests: always 400 invalid_request, never 5xx -----------------------------
@pytest.mark.parametrize("path", ["token", "introspect", "revoke"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        (None, b"grant_type=client_credentials"),
        ("text/plain", b"grant_type=client_credentials"),
        (FORM, b"grant_type=client_credentials&grant_type=refresh_token&token=a&token=b"),
        (FORM, b"token=\xff\xfe&grant_type=\xff"),
        (FORM, b"token=%ff%fe&grant_type=%C3%28"),
        (FORM, b"&".join(b"f%d=1" % i for i in range(100))),
        (FORM, b"x=" + b"a" * 40_000),
        (FORM, b"token=" + b"a" * 9000 + b"&grant_type=" + b"a" * 9000),
        (FORM, b""),
    ],
)
async def test_malformed_bodies_are_invalid_request(
    client: httpx.AsyncClient,
    clients: Registered,
    path: str,
    content_type: str | None,
    body: bytes,
) -> None:
    headers = clients.auth("svc")
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.post(f"/oauth2/{path}", content=body, headers=headers)
    oauth_error(r, 400, "invalid_request")
    assert set(r.json()) == {"error", "error_description"}


async def test_random_form_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    rng = random.Random(20240607)  # fixed seed: a failure reproduces
    alphabet = b"=&%+;:. _-azAZ09\xff\x00\xc3"
    words = [
        b"grant_type=",
        b"client_credentials",
        b"refresh_token",
        b"token=",
        b"scope=",
        b"client_id=svc",
        b"client_secret=",
        b"token_type_hint=",
        b"%",
        b"&",
        b"=",
    ]
    for i in range(120):
        parts = [
            rng.choice(words) if rng.random() < 0.5 else bytes([rng.choice(alphabet)])
            for _ in range(rng.randrange(0, 24))
        ]
        headers = {"Content-Type": FORM, **(clients.auth("svc") if i % 6 == 0 else {})}
        for path in ("token", "introspect", "revoke"):
            r = await client.post(f"/oauth2/{path}", content=b"".join(parts), headers=headers)
            assert r.status_code in (200, 400, 401), (path, parts, r.text)
            assert r.headers["cache-control"] == "no-store"


async def test_missing_parameters_are_invalid_request(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    oauth_error(await post(client, "token", {}, clients.auth("svc")), 400, "invalid_request")
    oauth_error(await post(client, "introspect", {}, clients.auth("rs")), 400, "invalid_request")
    oauth_error(
        await post(client, "revoke", {"token": ""}, clients.auth("rs")), 400, "invalid_request"
    )


async def test_client_id_mismatch_between_basic_and_body_is_invalid_request(
    client: httpx.AsyncClient, clients: Registered
) -> None:
    form = {"grant_type": "client_credentials", "client_id": "other"}
    oauth_error(await post(client, "token", form, clients.auth("svc")), 400, "invalid_request")


async def test_secrets_never_reach_the_audit_log(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered, alice: User
) -> None:
    pair = await session(ctx, alice, "app1")
    r = await post(client, "token", {"grant_type": "client_credentials"}, clients.auth("svc"))
    await post(client, "revoke", {"token": pair.refresh_token}, clients.auth("app1"))
    await post(client, "revoke", {"token": r.json()["access_token"]}, clients.auth("svc"))
    events = await ctx.store.list_audit(limit=1000)
    text = json.dumps([e.data for e in events]) + repr(events)
    assert {e.type for e in events} >= {"client.created", "token.issued", "token.revoked"}
    for secret in [
        *clients.secrets.values(),
        pair.refresh_token,
        pair.access_token,
        r.json()["access_token"],
        PASSWORD,
    ]:
        assert secret not in text
    stored = await ctx.store.get_client("svc")
    assert stored is not None and stored.secret_hash is not None
    assert stored.secret_hash.startswith("$argon2id$")
    assert clients.secrets["svc"] not in stored.secret_hash


async def test_client_credentials_are_rate_limited_per_client(
    client: httpx.AsyncClient, ctx: AppContext, clients: Registered
) -> None:
    ctx.limiter = Limiter({"token:ip": "1000/minute", "token:account": "2/minute"})
    form = {"grant_type": "client_credentials", "scope": "read"}
    codes = [(await post(client, "token", form, clients.auth("svc"))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = await post(client, "token", form, clients.auth("svc"))
    assert int(limited.headers["retry-after"]) >= 1
    # another client has its own budget
    assert (await post(client, "token", form, clients.auth("other"))).status_code == 200
