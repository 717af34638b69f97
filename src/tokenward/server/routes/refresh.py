"""POST /api/v1/refresh, its plain case, answered ahead of FastAPI's stack.

A refresh is the server's most frequent write: every client does one per access-token
lifetime. Through FastAPI's layers (exception middlewares, routing, dependency solving,
pydantic in and out) the HTTP handling cost more CPU than the rotation itself
(bench/http_refresh.py), so this path answers the one request shape clients send —

    POST /api/v1/refresh
    Content-Type: application/json
    {"refresh_token": "<1 to 4096 characters>"}

with no ``Origin`` header (CORS is an inner layer) — and hands every other request, with
whatever body it already read, to the route in routes/auth.py, which stays the definition:
cookie mode and its CSRF check, validation errors for a malformed body, the OpenAPI entry.
What the route would do, this does with the same parts: the per-IP limit, the Sessions
service (rotation, reuse detection, audit, metrics), the token body and Cache-Control of
routes/auth.py, and errors.py's responses; the outer layers (security headers, latency
metric) wrap it like any route.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.errors import TokenwardError
from tokenward.sdk.starlette import state_value
from tokenward.server.context import FIRST_PARTY_CLIENT, AppContext
from tokenward.server.deps import request_info
from tokenward.server.errors import error_response, unexpected_response
from tokenward.server.middleware import content_length, route_path
from tokenward.server.routes.auth import NO_STORE, REFRESH_TOKEN_MAX, token_body
from tokenward.server.services.sessions import Sessions

__all__ = ["REFRESH_PATH", "RefreshPath", "plain_refresh_token"]

REFRESH_PATH = "/api/v1/refresh"
_MAX_BODY = REFRESH_TOKEN_MAX * 6 + 64  # the longest JSON form of the longest token
_JSON = b"application/json"


def plain_refresh_token(body: bytes) -> str | None:
    """The token of a body that is exactly ``{"refresh_token": "<1..4096 chars>"}``;
    None for anything else (the route then decides, as for any body)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    token = data.get("refresh_token")
    return token if type(token) is str and 0 < len(token) <= REFRESH_TOKEN_MAX else None


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


class RefreshPath:
    """Answers the plain refresh request; every other request goes on to ``app``.

    Sits inside the outer layers and below Starlette's entry (``scope["app"]``), like
    routes/verify.py's FastPath.
    """

    route_template = REFRESH_PATH  # the latency metric's route label (middleware.route_label)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._context(scope)
        if ctx is None:
            await self.app(scope, receive, send)
            return
        limit = min(_MAX_BODY, ctx.settings.max_body_bytes)
        declared = content_length(scope)
        if declared is None or declared > limit:  # the route's body limit answers these
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive, limit)
        token = None if body is None else plain_refresh_token(body)
        if token is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["endpoint"] = self
        response = await self._answer(ctx, Request(scope), token)
        await response(scope, receive, send)

    @staticmethod
    def _context(scope: Scope) -> AppContext | None:
        """The app's context when this request is ours to answer (else None)."""
        if scope["type"] != "http" or route_path(scope) != REFRESH_PATH:
            return None
        if not _plain_request(scope):
            return None
        ctx = state_value(scope["app"].state, "ctx")
        return ctx if isinstance(ctx, AppContext) else None

    @staticmethod
    async def _answer(ctx: AppContext, request: Request, token: str) -> Response:
        try:
            info = request_info(request)
            ctx.limiter.hit("token:ip", info.ip or "-")
            pair = await Sessions(ctx).refresh(
                token, client_id=FIRST_PARTY_CLIENT, scope=None, request=info
            )
        except TokenwardError as exc:
            return error_response(exc, oauth=False)
        except Exception:  # what ServerErrorMiddleware would do for the route
            return unexpected_response(request.method, REFRESH_PATH)
        body = token_body(pair, cookie=False).model_dump(exclude_none=True)
        return Response(orjson.dumps(body), headers=NO_STORE, media_type="application/json")
