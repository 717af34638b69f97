"""HTTP middleware: security headers, request body limit, CORS, latency metrics.

Pure ASGI classes (no BaseHTTPMiddleware: no extra task per request, streaming intact).
The stack, outermost first::

    Latency -> SecurityHeaders -> [Starlette's ServerErrorMiddleware] -> CORS -> BodyLimit
    -> [ExceptionMiddleware] -> router

``outer_middleware`` wraps the whole Starlette stack (see ``app.TokenwardAPI``) so that the
500 answered by ServerErrorMiddleware carries the security headers and is timed too;
``install_middleware`` adds the inner layers with ``app.add_middleware``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.server.errors import problem
from tokenward.server.settings import Settings

__all__ = [
    "STRICT_CSP",
    "BodyLimit",
    "Latency",
    "SecurityHeaders",
    "content_length",
    "docs_csp",
    "install_middleware",
    "outer_middleware",
    "route_label",
    "route_path",
]

Header = tuple[bytes, bytes]

# Nothing we serve is a document that loads anything: JSON APIs and JWKS.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=63072000; includeSubDomains"  # two years (RFC 6797 §6.1)
_BASE: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# Swagger UI (FastAPI's /docs) loads its bundle and CSS from jsDelivr and runs one inline
# script, allowed by its exact hash; React sets inline styles, and its icons are data: URIs.
_DOCS_CDN = "https://cdn.jsdelivr.net"
_DOCS_FAVICON = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "DPoP", "X-CSRF-Token")  # cookies.CSRF_HEADER
CORS_EXPOSE = ("WWW-Authenticate", "Retry-After", "DPoP-Nonce")
# Never a raw path as a label (unbounded cardinality): 404s, and framework routes that
# leave no template in the scope (/docs, /openapi.json), get fixed labels.
UNMATCHED, OTHER = "<unmatched>", "<other>"


def docs_csp(html: bytes) -> str:
    """A CSP for the Swagger UI page: its CDN plus the hashes of its inline scripts."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src {_DOCS_CDN} {hashes}; "
        f"style-src {_DOCS_CDN} 'unsafe-inline'; img-src 'self' data: {_DOCS_FAVICON}; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _with_defaults(headers: Iterable[Header], defaults: Iterable[Header]) -> list[Header]:
    """Add each default header the response does not set itself."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out.extend((n, v) for n, v in defaults if n not in present)
    return out


class SecurityHeaders:
    """Security headers on every HTTP response; a route may set its own CSP."""

    def __init__(self, app: ASGIApp, *, hsts: bool, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        extra = ((b"strict-transport-security", HSTS.encode()),) if hsts else ()
        self.defaults: tuple[Header, ...] = _BASE + extra
        self.docs_paths = frozenset(docs_paths)
        self._strict = self._headers(STRICT_CSP)

    def _headers(self, csp: str) -> tuple[Header, ...]:
        return (*self.defaults, (b"content-security-policy", csp.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
        else:
            await self.app(scope, receive, self._sender(send, self._strict))

    @staticmethod
    def _sender(send: Send, defaults: tuple[Header, ...]) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": _with_defaults(message.get("headers", ()), defaults),
                }
            await send(message)

        return send_with_headers

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the (small) docs page to hash its inline script into the CSP."""
        start: Message = {}
        body: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    html = b"".join(body)
                    out = self._sender(send, self._headers(docs_csp(html)))
                    await out(start)
                    await out({"type": "http.response.body", "body": html})
            else:
                await send(message)

        await self.app(scope, receive, buffer)


class BodyLimit:
    """413 for request bodies over ``max_bytes``: by Content-Length, or counted as they stream.

    A declared length over the limit is refused before the app runs; a chunked body raises
    HTTPException(413) from ``receive`` as it crosses the limit, which errors.py turns
    into the problem response.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is None:
            response = problem(400, "invalid_request", "Content-Length is not a valid length")
        elif declared > self.max_bytes:
            response = self._too_large()
        else:
            await self.app(scope, self._counting(receive), send)
            return
        await response(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        return problem(413, "request_too_large", f"the request body exceeds {self.max_bytes} bytes")

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"the request body exceeds {self.max_bytes} bytes")
            return message

        return counted


def content_length(scope: Scope) -> int | None:
    """The declared body length: 0 when absent, None when malformed (RFC 9110 §8.6)."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
    if not values:
        return 0
    if len(set(values)) != 1 or not values[0].isdigit() or len(values[0]) > 18:
        return None
    return int(values[0])


def route_path(scope: Scope) -> str:
    """The path the router would match (without a ``root_path`` prefix, ASGI 3)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class Latency:
    """Request latency per route template in ``ctx.metrics.latency`` (when the app has a ctx)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self._observe(scope, time.perf_counter() - started)

    @staticmethod
    def _observe(scope: Scope, seconds: float) -> None:
        app = scope.get("app")
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        if ctx is None:
            return
        ctx.metrics.latency.labels(route=route_label(scope)).observe(seconds)


def route_label(scope: Scope) -> str:
    """The matched route's template; plain ASGI endpoints name theirs in ``route_template``
    (FastAPI leaves no route object in the scope for them)."""
    path = getattr(scope.get("route"), "path", None)
    path = path or getattr(scope.get("endpoint"), "route_template", None)
    if isinstance(path, str):
        return path
    return OTHER if "endpoint" in scope else UNMATCHED


def docs_paths(app: FastAPI) -> tuple[str, ...]:
    paths = [app.docs_url, app.swagger_ui_oauth2_redirect_url if app.docs_url else None]
    return tuple(p for p in paths if p)


def outer_middleware(stack: ASGIApp, settings: Settings, docs: Iterable[str]) -> ASGIApp:
    """The layers that must see every response, Starlette's own 500 included."""
    return Latency(SecurityHeaders(stack, hsts=settings.https, docs_paths=docs))


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The inner layers; ``add_middleware`` puts the last one added outermost."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Explicit origins only (settings refuse "*"): credentials are allowed.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS),
            expose_headers=list(CORS_EXPOSE),
            max_age=600,
        )
