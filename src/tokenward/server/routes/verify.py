"""GET /api/v1/verify: forward authentication for nginx ``auth_request`` and Traefik ForwardAuth.

A proxy asks this endpoint about every request it guards, so it is a plain ASGI endpoint
like the JWKS: no FastAPI dependency chain, no pydantic, no store access, no audit row.
It reads ``Authorization: Bearer`` (RFC 6750 §2.1), verifies with the server's own
Verifier (the same key ring, revocation view and verified-token cache as every other
route) and answers:

- 200, empty body, with ``X-Auth-Subject``, ``X-Auth-Scopes`` (space-separated),
  ``X-Auth-Roles`` (comma-separated) and ``X-Auth-Client-Id`` for the proxy to pass on;
- 401 ``WWW-Authenticate: Bearer realm="tokenward"`` when the request carries no Bearer
  credentials, no header or another scheme (RFC 6750 §3.1: no error code then), and
  ``Bearer realm="tokenward", error="invalid_token"`` for every rejection alike (R21);
- 403 ``error="insufficient_scope", scope="..."`` (RFC 6750 §3.1) when ``?scope=a+b``
  names a scope the token was not granted (every named scope is required);
- 400 when the ``scope`` parameter is not a list of RFC 6749 §3.3 scope tokens: a
  misconfigured proxy must fail closed, and loudly.

These statuses are the forward-auth protocol's answers, not exceptions turned into HTTP;
the 401/403 bodies are the same RFC 9457 problem documents server/errors.py gives every
token failure (Traefik relays them to the client, nginx drops them).

Claims are attacker-influenced (an admin names roles, a client registers its id), so each
header value is percent-encoded (RFC 3986 §2.1) wherever it holds anything but visible
ASCII, ``%`` or its list separator: no CR, LF or NUL can split or end a header, ordinary
values pass unchanged, and an upstream can decode the rest unambiguously.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenward.errors import InvalidToken
from tokenward.sdk.guard import problem_document
from tokenward.server.context import AppContext
from tokenward.server.middleware import route_path

__all__ = [
    "VERIFY_PATH",
    "Answer",
    "Counters",
    "FastPath",
    "VerifyEndpoint",
    "decide",
    "header_item",
    "header_value",
    "required_scopes",
    "router",
]

router = APIRouter(tags=["forward-auth"])

VERIFY_PATH = "/api/v1/verify"
REALM = 'Bearer realm="tokenward"'
MAX_QUERY = 2048  # a proxy's configured scope list, not a free-text field

Header = tuple[bytes, bytes]
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))  # RFC 9110 §5.5 visible ASCII
_SAFE = _VCHAR.replace("%", "")
_SAFE_ITEM = _SAFE.replace(",", "")
_PLAIN = re.compile(r"[!-$&-~]*")  # _SAFE: visible ASCII but "%"
_PLAIN_ITEM = re.compile(r"[!-$&-+\--~]*")  # _SAFE_ITEM: nor ","
_SCOPE_TOKEN = re.compile(r"[!#-\[\]-~]+")  # RFC 6749 §3.3: no SP, '"' or '\'


class Answer(NamedTuple):
    status: int
    headers: tuple[Header, ...]  # immutable: the refusals are shared by every request
    body: bytes


def _problem(status: int, error: str, detail: str) -> bytes:
    """The body server/errors.py ``problem()`` renders (RFC 9457 §3), as bytes."""
    return orjson.dumps(problem_document(status, error, detail))


def _refusal(status: int, challenge: str | None, body: bytes) -> Answer:
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode()))
    return Answer(status, tuple(headers), body)


_OK_TAIL: tuple[Header, ...] = ((b"content-length", b"0"), (b"cache-control", b"no-store"))
MISSING = _refusal(401, REALM, _problem(401, "invalid_token", "authentication required"))
INVALID = _refusal(
    401,
    REALM + ', error="invalid_token"',
    _problem(401, "invalid_token", "the access token is invalid"),
)
BAD_QUERY = _refusal(
    400, None, _problem(400, "invalid_request", "scope must list RFC 6749 scope tokens")
)
_405 = _refusal(405, None, _problem(405, "method_not_allowed", "Method Not Allowed"))
NOT_ALLOWED = _405._replace(headers=(*_405.headers, (b"allow", b"GET, HEAD")))
_METHODS = frozenset({"GET", "HEAD"})


def _insufficient(required: Iterable[str]) -> Answer:
    wanted = " ".join(required)  # scope tokens: nothing to escape in a quoted-string
    challenge = f'{REALM}, error="insufficient_scope", scope="{wanted}"'
    body = _problem(403, "insufficient_scope", f"requires scope {wanted!r}")
    return _refusal(403, challenge, body)


def header_value(value: str) -> bytes:
    """``value`` as a header value: unchanged when plain, else percent-encoded."""
    if _PLAIN.fullmatch(value):
        return value.encode()
    return quote(value, safe=_SAFE).encode()


def header_item(value: str) -> bytes:
    """One item of a comma-separated header value (``,`` is encoded as well)."""
    if _PLAIN_ITEM.fullmatch(value):
        return value.encode()
    return quote(value, safe=_SAFE_ITEM).encode()


def required_scopes(query: bytes) -> tuple[str, ...] | None:
    """The scopes named by ``scope`` parameters, in order; None if malformed."""
    if not query:
        return ()
    if len(query) > MAX_QUERY:
        return None
    names = [v for k, v in parse_qsl(query.decode("latin-1")) if k == "scope"]
    wanted = [s for name in names for s in name.split(" ") if s]
    if not all(_SCOPE_TOKEN.fullmatch(s) for s in wanted):
        return None
    return tuple(dict.fromkeys(wanted))  # without repeats, in the order given


def bearer_token(headers: Iterable[Header]) -> str | None:
    """RFC 6750 §2.1 credentials: the token, "" if unusable, None if there are none."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return ""  # two Authorization headers: ambiguous, refuse
            found = value
    if found is None:
        return None
    scheme, _, token = found.partition(b" ")
    if scheme.lower() != b"bearer":
        return None  # another scheme: to us, no credentials at all (RFC 6750 §3.1)
    return token.strip(b" ").decode("latin-1")


def _granted(claims: Mapping[str, Any]) -> list[str]:
    scope = claims.get("scope")
    return scope.split() if isinstance(scope, str) else []


def grant_headers(claims: Mapping[str, Any], scopes: list[str]) -> tuple[Header, ...]:
    roles = claims.get("roles")
    names = [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
    return (
        (b"x-auth-subject", header_value(claims["sub"])),
        (b"x-auth-scopes", b" ".join([header_value(s) for s in scopes])),
        (b"x-auth-roles", b",".join([header_item(r) for r in names])),
        (b"x-auth-client-id", header_value(claims["client_id"])),
        *_OK_TAIL,
    )


class Counters:
    """``ctx.metrics.verifications`` children by result: ``labels()`` takes a lock and
    builds a key on every call, which costs more than a cached verification."""

    __slots__ = ("_children", "counter")

    def __init__(self, ctx: AppContext) -> None:
        self.counter = ctx.metrics.verifications
        self._children: dict[str, Any] = {}

    def count(self, result: str) -> None:
        child = self._children.get(result)
        if child is None:  # results are a small fixed set: InvalidToken codes, ok, ...
            child = self._children[result] = self.counter.labels(result=result)
        child.inc()


def decide(ctx: AppContext, scope: Scope, counters: Counters) -> Answer:
    """The answer to one forward-auth request (no I/O: the verifier is in memory)."""
    required = required_scopes(scope.get("query_string", b""))
    if required is None:
        return BAD_QUERY
    token = bearer_token(scope["headers"])
    if token is None:
        counters.count("missing_token")
        return MISSING
    try:
        claims = ctx.verifier.verify(token)
    except InvalidToken as exc:
        counters.count(exc.code)
        return INVALID
    scopes = _granted(claims)
    if required and not set(required).issubset(scopes):
        counters.count("insufficient_scope")
        return _insufficient(required)
    counters.count("ok")
    return Answer(200, grant_headers(claims, scopes), b"")


def _counters(state: Any, ctx: AppContext) -> Counters:
    """The app's Counters, made once per context (held on the app, like the JWKS body)."""
    counters: Counters | None = getattr(state, "verify_counters", None)
    if counters is None or counters.counter is not ctx.metrics.verifications:
        counters = state.verify_counters = Counters(ctx)
    return counters


class VerifyEndpoint:
    """GET/HEAD /api/v1/verify as a raw ASGI app."""

    route_template = VERIFY_PATH  # the latency metric's label (middleware.Latency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in _METHODS:  # the router checks too; this keeps the endpoint whole
            status, headers, body = NOT_ALLOWED
        else:
            state = scope["app"].state
            ctx: AppContext = state.ctx
            status, headers, body = decide(ctx, scope, _counters(state, ctx))
        start = {"type": "http.response.start", "status": status, "headers": list(headers)}
        await send(start)
        body = b"" if method == "HEAD" else body
        await send({"type": "http.response.body", "body": body})


# Starlette answers HEAD on every GET route; any other method is a 405 (errors.py).
router.routes.append(Route(VERIFY_PATH, VerifyEndpoint(), methods=["GET"], name="verify"))


class FastPath:
    """Answers VERIFY_PATH ahead of the inner layers (routing, exception handlers, body
    limit, CORS); every other request goes on to ``app``.

    Meant to sit inside the outer layers (latency metric, security headers) and below
    Starlette's entry, which sets ``scope["app"]``. The endpoint reads no body and raises
    nothing it expects, so the skipped layers have nothing to do for it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.endpoint = VerifyEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) == VERIFY_PATH:
            scope["endpoint"] = self.endpoint  # the latency metric's route label
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
