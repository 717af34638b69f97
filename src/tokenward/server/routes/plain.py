"""The plain JSON sign-in requests, answered ahead of FastAPI's stack.

Login and refresh are the server's busiest writes: every client signs in, then refreshes
once per access-token lifetime. Through FastAPI's layers (exception middlewares, routing,
dependency solving, pydantic in and out) the HTTP handling of one cost more CPU than the
rotation itself (bench/http_refresh.py, bench/http_login.py). A :class:`PlainPath`
answers the one request shape clients send to its path —

    POST <path>
    Content-Type: application/json
    <a body its ``parse`` accepts>

with no ``Origin`` header (CORS is an inner layer) — and hands every other request, with
whatever body it already read, to the route in routes/auth.py, which stays the definition:
cookie mode and its CSRF check, validation errors for a malformed body, the OpenAPI entry.
What the route would do, a path does with the same parts: the services, the token body
and Cache-Control of routes/auth.py, and errors.py's responses; the outer layers
(security headers, latency metric) wrap it like any route.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.errors import TokenwardError
from tokenward.sdk.starlette import state_value
from tokenward.server.context import AppContext
from tokenward.server.errors import error_response, unexpected_response
from tokenward.server.middleware import content_length, route_path
from tokenward.server.routes.auth import NO_STORE, token_body
from tokenward.server.services.tokens import TokenPair

__all__ = ["PlainPath", "json_object", "token_response"]

P = TypeVar("P")
_JSON = b"application/json"


def _plain_request(scope: Scope) -> bool:
    """POST, one Content-Type that is application/json, no Origin."""
    if scope["method"] != "POST":
        return False
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"origin" or (name == b"content-type" and content_type is not None):
            return False
        if name == b"content-type":
            content_type = value
    media = (content_type or b"").partition(b";")[0].strip().lower()
    return media == _JSON


async def _read(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body; None when it ends otherwise (a
    disconnect) or grows past ``limit`` (the route's body limit then speaks)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back what was already read."""
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed


def token_response(pair: TokenPair) -> Response:
    """The route's 200 without cookie mode: RFC 6749 §5.1's JSON, ``no-store``."""
    body = token_body(pair, cookie=False).model_dump(exclude_none=True)
    return Response(orjson.dumps(body), headers=NO_STORE, media_type="application/json")


class PlainPath(Generic[P]):
    """Answers the plain request to ``path``; every other request goes on to ``app``.

    Sits inside the outer layers and below Starlette's entry (``scope["app"]``), like
    routes/verify.py's FastPath. A subclass says which bodies are plain (``parse``: the
    parsed request, or None for the route to decide) and how to answer one (``_answer``).
    """

    path: str
    max_body: int  # the longest plain body; a longer one goes to the route

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route_template = self.path  # the latency metric's label (middleware.route_label)

    def parse(self, body: bytes, ctx: AppContext) -> P | None:
        raise NotImplementedError

    async def _answer(self, ctx: AppContext, request: Request, parsed: P) -> Response:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._context(scope)
        if ctx is None:
            await self.app(scope, receive, send)
            return
        limit = min(self.max_body, ctx.settings.max_body_bytes)
        declared = content_length(scope)
        if declared is None or declared > limit:  # the route's body limit answers these
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive, limit)
        parsed = None if body is None else self.parse(body, ctx)
        if parsed is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["endpoint"] = self
        response = await self._respond(ctx, Request(scope), parsed)
        await response(scope, receive, send)

    def _context(self, scope: Scope) -> AppContext | None:
        """The app's context when this request is ours to answer (else None)."""
        if scope["type"] != "http" or route_path(scope) != self.path:
            return None
        if not _plain_request(scope):
            return None
        ctx = state_value(scope["app"].state, "ctx")
        return ctx if isinstance(ctx, AppContext) else None

    async def _respond(self, ctx: AppContext, request: Request, parsed: P) -> Response:
        try:
            return await self._answer(ctx, request, parsed)
        except TokenwardError as exc:
            return error_response(exc, oauth=False)
        except Exception:  # what ServerErrorMiddleware would do for the route
            return unexpected_response(request.method, self.path)


def json_object(body: bytes) -> dict[str, object] | None:
    """The body's JSON object, or None when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if type(data) is dict else None
