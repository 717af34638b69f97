"""Pure ASGI middleware (no framework import): ``Authorization: Bearer`` -> ``scope["auth"]``.

    app = TokenwardMiddleware(app, verifier, exclude=["/healthz"], required=True)

Every http and websocket request that is not excluded is authenticated; ``scope["auth"]``
is then the :class:`Principal`, or None for a request without Bearer credentials (Starlette's
``request.auth`` reads it; for Starlette's ``request.user`` and ``@requires`` use the
AuthenticationBackend in starlette.py instead).

- A Bearer token that is refused is answered 401 at once, even where anonymous access is
  allowed: a client whose token expired must be told so (RFC 6750 §3.1 ``invalid_token``)
  rather than be served as anonymous.
- With ``required=True``, or a ``requirement`` (``requires_roles("admin")``, ...), anonymous
  requests get 401 and callers without the rights 403, with the shared challenge and body.
- ``exclude`` lists paths left alone (``"/healthz"`` also covers ``"/healthz/..."``).
- A websocket refusal uses the ASGI ``websocket.http.response`` extension when the server
  offers it; otherwise the handshake is closed with 1008 (RFC 6455 §7.4.1 policy violation),
  which servers answer with HTTP 403.

Verification runs inline on the event loop: it takes microseconds (cached tokens even less).
A RemoteJWKS refetch is a blocking HTTP call, but it happens at most once per cache lifetime
or cooldown, and ``Verifier.from_issuer`` fetches the keys at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tokenward.sdk.guard import AUTH_ERRORS, Failure, Guard, TokenVerifier
from tokenward.sdk.principal import ANY, Principal, PrincipalFactory, Requirement

__all__ = [
    "TokenwardMiddleware",
    "authorization_header",
    "principal_of",
    "raw_authorization",
    "refuse",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def authorization_header(scope: Scope) -> str | None:
    """The ``Authorization`` header of an ASGI scope."""
    found = raw_authorization(scope)
    return None if found is None else found.decode("latin-1")


def raw_authorization(scope: Scope) -> bytes | None:
    """The ``Authorization`` header of an ASGI scope as sent: what Guard.authenticate
    takes fastest (its Principal cache is keyed by the header, so no decoding per request)."""
    # A repeated header is joined, so it fails the one-b64token check instead of one copy
    # being picked silently (RFC 9110 §5.3).
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            found = value if found is None else found + b", " + value
    return found


def principal_of(scope: Scope) -> Principal | None:
    """The Principal the middleware put in ``scope`` (None: anonymous or not authenticated)."""
    found = scope.get("auth")
    return found if isinstance(found, Principal) else None


async def refuse(scope: Scope, send: Send, failure: Failure) -> None:
    """Send ``failure`` as the response (http) or the handshake's refusal (websocket)."""
    body = failure.body
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in failure.headers]
    headers.append((b"content-length", str(len(body)).encode()))
    prefix = "http"
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        prefix = "websocket.http"
    start = {"type": f"{prefix}.response.start", "status": failure.status, "headers": headers}
    await send(start)
    await send({"type": f"{prefix}.response.body", "body": body})


class TokenwardMiddleware:
    """Authenticates every (non-excluded) request; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier | Guard,
        *,
        required: bool = False,
        requirement: Requirement | None = None,
        exclude: Iterable[str] = (),
        principal_factory: PrincipalFactory = Principal.from_claims,
        realm: str = "tokenward",
    ) -> None:
        self.app = app
        self.guard = (
            verifier
            if isinstance(verifier, Guard)
            else Guard(verifier, principal_factory=principal_factory, realm=realm)
        )
        self.requirement = requirement or ANY
        self.required = required or requirement is not None
        self.exclude = tuple(p.rstrip("/") for p in exclude)

    def _excluded(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._excluded(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            principal = self.guard.authenticate(raw_authorization(scope))
            if self.required:
                self.guard.authorize(principal, self.requirement)
        except AUTH_ERRORS as exc:
            await refuse(scope, send, self.guard.failure(exc))
            return
        scope["auth"] = principal
        await self.app(scope, receive, send)
