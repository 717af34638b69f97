"""/.well-known: the JWK Set (RFC 7517 §5) and authorization server metadata (RFC 8414).

The JWKS is a plain ASGI endpoint (no FastAPI dependency machinery: every verifier of every
resource server fetches it). Its serialised body and ETag are cached per state of the key
ring, and ``max-age`` follows the rotation schedule, so caches expire before a new key
is published (rotation.py: a key is in the JWKS ``publish_ahead`` before it signs).

The metadata lists only what this server implements, derived from the routes the app
really has. Known gaps, deliberately not advertised until they exist: no authorization
endpoint (so ``response_types_supported`` is empty and there is no
``code_challenge_methods_supported``), no ID tokens (no ``id_token_signing_alg_values_
supported``, ``subject_types_supported`` or userinfo). OpenID Connect Discovery 1.0 §3
makes ``authorization_endpoint`` and those ID-token members REQUIRED, so the document at
/.well-known/openid-configuration is not yet a complete OIDC provider configuration;
it is served so OIDC-only clients can find the JWKS and token endpoints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from tokenward.keys import KeyPurpose, KeyRing, KeyState
from tokenward.rotation import RotationPolicy
from tokenward.server.context import AppContext
from tokenward.server.deps import get_ctx
from tokenward.server.keyring import rotation_policy
from tokenward.server.routes.oauth import GRANTS

__all__ = ["ENDPOINTS", "JWKS_PATH", "JWKSEndpoint", "jwks_max_age", "metadata", "router"]

router = APIRouter(tags=["discovery"])

JWKS_PATH = "/.well-known/jwks.json"
JWKS_MIN_AGE, JWKS_MAX_AGE = 60, 3600
METADATA_CACHE = "public, max-age=300"

# metadata member -> (path, client authentication methods, RFC 8414 §2).
ENDPOINTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "token_endpoint": ("/oauth2/token", ("client_secret_basic", "client_secret_post", "none")),
    "introspection_endpoint": ("/oauth2/introspect", ("client_secret_basic", "client_secret_post")),
    "revocation_endpoint": (
        "/oauth2/revoke",
        ("client_secret_basic", "client_secret_post", "none"),
    ),
}


def jwks_max_age(ring: KeyRing, policy: RotationPolicy, now: float) -> int:
    """Seconds a JWKS response may be cached: until the next key would be published.

    Clamped to [60 s, 1 h]: a cache never holds a set older than an hour, and a server
    running late on a due publication is not asked for the set on every request.
    """
    keys = [k for k in ring if k.purpose is KeyPurpose.ACCESS]
    active = next((k for k in keys if k.state is KeyState.ACTIVE), None)
    if active is None or any(k.state is KeyState.NEXT for k in keys):
        return JWKS_MAX_AGE  # the next key is already published
    publish_at = (active.activated_at or active.created_at) + policy.period - policy.publish_ahead
    return int(min(max(publish_at - now, JWKS_MIN_AGE), JWKS_MAX_AGE))


@dataclass(frozen=True, slots=True)
class _Serialised:
    keys: tuple[object, ...]  # the ring's key tuple it was made from (compared by identity)
    body: bytes
    etag: bytes


def _serialised(state: Any, ring: KeyRing) -> _Serialised:
    """The JWKS body and ETag, cached on the app's state per version of the key ring."""
    cached: _Serialised | None = getattr(state, "jwks_serialised", None)
    if cached is None or cached.keys is not ring.keys:
        body = orjson.dumps(ring.jwks())
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        cached = state.jwks_serialised = _Serialised(ring.keys, body, etag)
    return cached


class JWKSEndpoint:
    """GET /.well-known/jwks.json as a raw ASGI app (R23: only published public keys)."""

    route_template = JWKS_PATH  # the latency metric's label (middleware.Latency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        ctx: AppContext = state.ctx
        doc = _serialised(state, ctx.ring)
        max_age = jwks_max_age(ctx.ring, rotation_policy(ctx.settings), ctx.clock())
        headers = [
            (b"cache-control", b"public, max-age=%d" % max_age),
            (b"etag", doc.etag),
        ]
        if _matches_etag(scope, doc.etag):  # RFC 9110 §13.1.2
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(doc.body)).encode()),
        ]
        body = b"" if scope["method"] == "HEAD" else doc.body
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _matches_etag(scope: Scope, etag: bytes) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"if-none-match":
            tags = {t.strip().removeprefix(b"W/") for t in value.split(b",")}
            return etag in tags or b"*" in tags
    return False


router.routes.append(Route(JWKS_PATH, JWKSEndpoint(), methods=["GET"], name="jwks"))


def _implemented(request: Request, path: str) -> bool:
    """Whether the app really answers POST ``path`` (so we never advertise a 404)."""
    scope = {"type": "http", "path": path, "method": "POST", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


async def _scopes(ctx: AppContext) -> list[str]:
    """Every scope some enabled client may be granted (RFC 8414 §2 ``scopes_supported``)."""
    clients = await ctx.store.list_clients()
    return sorted({s for c in clients if not c.disabled for s in c.scopes})


async def metadata(request: Request) -> dict[str, Any]:
    """The RFC 8414 §2 document: every URL derived from the configured issuer."""
    ctx = get_ctx(request)
    issuer = ctx.settings.issuer
    doc: dict[str, Any] = {"issuer": issuer, "jwks_uri": issuer + JWKS_PATH}
    for member, (path, methods) in ENDPOINTS.items():
        if _implemented(request, path):
            doc[member] = issuer + path
            doc[f"{member}_auth_methods_supported"] = list(methods)
    if "token_endpoint" in doc:
        doc["grant_types_supported"] = sorted(GRANTS)  # the token endpoint's registry
    doc["response_types_supported"] = []  # REQUIRED by §2; no authorization endpoint yet
    doc["scopes_supported"] = await _scopes(ctx)
    if request.app.docs_url:
        doc["service_documentation"] = issuer + request.app.docs_url
    return doc


async def _metadata_response(request: Request) -> Response:
    body = orjson.dumps(await metadata(request))
    return Response(body, media_type="application/json", headers={"Cache-Control": METADATA_CACHE})


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server_metadata(request: Request) -> Response:
    """RFC 8414 §3: authorization server metadata."""
    return await _metadata_response(request)


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> Response:
    """OIDC Discovery 1.0 §4 location; the same document (see the module docstring)."""
    return await _metadata_response(request)
