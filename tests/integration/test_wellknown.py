"""/.well-known: the JWK Set (RFC 7517 §5, SECURITY.md R23) and server metadata (RFC 8414).

Time travels with the FrozenClock; the scheduled rotation step is run by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock, KeyPurpose, KeyState, Verifier
from tokenward.rotation import DAY
from tokenward.server.app import create_app
from tokenward.server.background import rotate_keys_once
from tokenward.server.context import AppContext
from tokenward.server.keyring import rotation_policy
from tokenward.server.routes.oauth import GRANTS
from tokenward.server.services.clients import Clients
from tokenward.server.settings import Settings

from .conftest import ISSUER

pytestmark = pytest.mark.anyio

JWKS = "/.well-known/jwks.json"
RFC8414 = "/.well-known/oauth-authorization-server"
OIDC = "/.well-known/openid-configuration"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def max_age(response: httpx.Response) -> int:
    directives = dict(
        [*d.strip().split("="), ""][:2] for d in response.headers["cache-control"].split(",")
    )
    assert "public" in directives
    return int(directives["max-age"])


def published_kids(ctx: AppContext) -> set[str]:
    return {k.kid for k in ctx.ring if k.published and k.purpose is KeyPurpose.ACCESS}


# -- JWKS ----------------------------------------------------------------------------------
async def test_jwks_has_only_the_public_keys_of_the_ring(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    r = await client.get(JWKS)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    keys = r.json()["keys"]
    assert {k["kid"] for k in keys} == published_kids(ctx) != set()
    assert r.json() == ctx.ring.jwks()
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig" and key["alg"] == ctx.settings.signing_alg


async def test_jwks_verifies_tokens_the_server_issues(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    token = ctx.issuer.issue("user-1", ctx.settings.effective_audience)
    doc = (await client.get(JWKS)).json()
    verifier = Verifier(doc, issuer=ISSUER, audience=ISSUER, clock=ctx.clock)
    assert verifier.verify(token)["sub"] == "user-1"


async def test_jwks_cache_lifetime_follows_the_rotation_schedule(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    policy = rotation_policy(ctx.settings)
    assert max_age(await client.get(JWKS)) == 3600  # next publication is weeks away: capped
    clock.advance(policy.period - policy.publish_ahead - 600)
    assert max_age(await client.get(JWKS)) == 600  # expires exactly when the next key is due
    clock.advance(590)
    assert max_age(await client.get(JWKS)) == 60  # never less than a minute
    clock.advance(30)
    assert max_age(await client.get(JWKS)) == 60  # due but not yet published: stay short
    before = published_kids(ctx)
    assert await rotate_keys_once(ctx)  # the scheduled step publishes the next key
    r = await client.get(JWKS)
    assert {k["kid"] for k in r.json()["keys"]} > before
    assert any(k.state is KeyState.NEXT for k in ctx.ring)
    assert max_age(r) == 3600  # the next key is out: nothing new until it has signed a while


async def test_jwks_etag_changes_with_the_key_set(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    first = await client.get(JWKS)
    etag = first.headers["etag"]
    same = await client.get(JWKS, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag and max_age(same) == 3600
    clock.advance(30 * DAY)
    await rotate_keys_once(ctx)
    changed = await client.get(JWKS, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json() == ctx.ring.jwks()


async def test_jwks_answers_head_and_refuses_other_methods(client: httpx.AsyncClient) -> None:
    head = await client.head(JWKS)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len((await client.get(JWKS)).content)
    post = await client.post(JWKS)
    assert post.status_code == 405
    assert post.headers["content-type"] == "application/problem+json"


# -- metadata ------------------------------------------------------------------------------
async def test_metadata_lists_exactly_what_is_implemented(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    doc = (await client.get(RFC8414)).json()
    assert doc["issuer"] == ISSUER == ctx.settings.issuer
    assert doc["jwks_uri"] == ISSUER + JWKS
    assert doc["token_endpoint"] == ISSUER + "/oauth2/token"
    assert doc["introspection_endpoint"] == ISSUER + "/oauth2/introspect"
    assert doc["revocation_endpoint"] == ISSUER + "/oauth2/revoke"
    assert doc["grant_types_supported"] == ["client_credentials", "refresh_token"]
    assert sorted(GRANTS) == doc["grant_types_supported"]
    assert doc["response_types_supported"] == []  # no authorization endpoint yet
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    # RFC 7662 §2.1: introspection is for authenticated (confidential) callers only
    assert doc["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "none" in doc["revocation_endpoint_auth_methods_supported"]
    for absent in (
        "authorization_endpoint",
        "code_challenge_methods_supported",
        "userinfo_endpoint",
        "id_token_signing_alg_values_supported",
        "registration_endpoint",
    ):
        assert absent not in doc


async def test_every_advertised_url_answers(client: httpx.AsyncClient) -> None:
    doc = (await client.get(RFC8414)).json()
    urls = {k: v for k, v in doc.items() if k.endswith(("_endpoint", "_uri", "documentation"))}
    assert len(urls) == 5
    for member, url in urls.items():
        assert url.startswith(ISSUER + "/")
        path = url.removeprefix(ISSUER)
        method = "POST" if member.endswith("_endpoint") else "GET"
        r = await client.request(method, path, data={} if method == "POST" else None)
        assert r.status_code not in (404, 405), (member, r.status_code)
        assert r.status_code < 500


async def test_advertised_grants_work_and_others_are_unsupported(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, secret = await Clients(ctx).create("svc", "svc", ["read"], ["client_credentials"])
    assert secret is not None
    auth = httpx.BasicAuth("svc", secret)
    ok = await client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert ok.status_code == 200, ok.text
    for grant in ("authorization_code", "password", "urn:ietf:params:oauth:grant-type:device_code"):
        r = await client.post("/oauth2/token", data={"grant_type": grant}, auth=auth)
        assert r.json()["error"] == "unsupported_grant_type", grant


async def test_scopes_supported_are_those_clients_can_get(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    assert (await client.get(RFC8414)).json()["scopes_supported"] == []
    await Clients(ctx).create("a", "a", ["read", "write"], ["client_credentials"])
    await Clients(ctx).create("b", "b", ["admin:keys", "read"], ["client_credentials"])
    doc = (await client.get(RFC8414)).json()
    assert doc["scopes_supported"] == ["admin:keys", "read", "write"]


async def test_openid_configuration_is_the_same_document(client: httpx.AsyncClient) -> None:
    rfc, oidc = await client.get(RFC8414), await client.get(OIDC)
    assert rfc.status_code == oidc.status_code == 200
    assert rfc.json() == oidc.json()
    assert max_age(oidc) == 300


async def test_urls_derive_from_the_configured_issuer(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    issuer = "https://id.example/tenant-a"
    app = create_app(make_settings(issuer=issuer + "/"), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://id.example") as http:
            doc: dict[str, Any] = (await http.get(RFC8414)).json()
    assert doc["issuer"] == issuer
    assert doc["jwks_uri"] == issuer + JWKS
    assert doc["token_endpoint"] == issuer + "/oauth2/token"
    assert all(
        v.startswith(issuer + "/") for k, v in doc.items() if isinstance(v, str) and k != "issuer"
    )
