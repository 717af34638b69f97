"""POST /api/v1/refresh, its plain case, answered ahead of FastAPI's stack (routes/plain.py).

The plain body is exactly ``{"refresh_token": "<1 to 4096 characters>"}``; the answer is
the route's: the per-IP limit, then the Sessions service (rotation, reuse detection,
audit, metrics) and the token body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenward.server.context import FIRST_PARTY_CLIENT, AppContext
from tokenward.server.deps import request_info
from tokenward.server.routes.auth import REFRESH_TOKEN_MAX
from tokenward.server.routes.plain import PlainPath, json_object, token_response
from tokenward.server.services.sessions import Sessions

__all__ = ["REFRESH_PATH", "RefreshPath", "plain_refresh_token"]

REFRESH_PATH = "/api/v1/refresh"


def plain_refresh_token(body: bytes) -> str | None:
    """The token of a body that is exactly ``{"refresh_token": "<1..4096 chars>"}``;
    None for anything else (the route then decides, as for any body)."""
    data = json_object(body)
    if data is None or len(data) != 1:
        return None
    token = data.get("refresh_token")
    return token if type(token) is str and 0 < len(token) <= REFRESH_TOKEN_MAX else None


class RefreshPath(PlainPath[str]):
    """The plain refresh; every other request goes on to the route."""

    path = REFRESH_PATH
    max_body = REFRESH_TOKEN_MAX * 6 + 64  # the longest JSON form of the longest token

    def parse(self, body: bytes, ctx: AppContext) -> str | None:
        return plain_refresh_token(body)

    async def _answer(self, ctx: AppContext, request: Request, token: str) -> Response:
        info = request_info(request)
        ctx.limiter.hit("token:ip", info.ip or "-")
        pair = await Sessions(ctx).refresh(
            token, client_id=FIRST_PARTY_CLIENT, scope=None, request=info
        )
        return token_response(pair)
