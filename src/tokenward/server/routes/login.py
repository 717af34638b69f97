"""POST /api/v1/login, its plain case, answered ahead of FastAPI's stack (routes/plain.py).

The plain body is ``{"username": …, "password": …}`` within the route's lengths, with an
optional ``"cookie"`` flag that leaves the refresh token in the body (``false``, or absent
with cookie mode off). Cookie mode, with its cookies and CSRF token, stays with the route.
The answer is the route's: routes/auth.py's ``sign_in`` (rate limits, lockout, argon2id,
the session and its audit row) and the token body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenward.server.context import AppContext
from tokenward.server.deps import request_info
from tokenward.server.routes.auth import PASSWORD_MAX, USERNAME_MAX, sign_in
from tokenward.server.routes.plain import PlainPath, json_object, token_response

__all__ = ["LOGIN_PATH", "LoginPath", "plain_login"]

LOGIN_PATH = "/api/v1/login"
_KEYS = frozenset({"username", "password", "cookie"})


def _text(value: object, longest: int) -> str | None:
    return value if type(value) is str and 0 < len(value) <= longest else None


def plain_login(body: bytes, *, cookie_mode: bool) -> tuple[str, str] | None:
    """Username and password of a plain body without cookie mode; None for anything else
    (the route then decides, as for any body)."""
    data = json_object(body)
    if data is None or not data.keys() <= _KEYS:
        return None
    username = _text(data.get("username"), USERNAME_MAX)
    password = _text(data.get("password"), PASSWORD_MAX)
    cookie = data.get("cookie")
    if username is None or password is None or (cookie is not None and type(cookie) is not bool):
        return None
    return None if (cookie_mode if cookie is None else cookie) else (username, password)


class LoginPath(PlainPath[tuple[str, str]]):
    """The plain login; every other request goes on to the route."""

    path = LOGIN_PATH
    max_body = (USERNAME_MAX + PASSWORD_MAX) * 6 + 128  # their longest JSON forms, and keys

    def parse(self, body: bytes, ctx: AppContext) -> tuple[str, str] | None:
        return plain_login(body, cookie_mode=ctx.settings.cookie_mode)

    async def _answer(
        self, ctx: AppContext, request: Request, credentials: tuple[str, str]
    ) -> Response:
        username, password = credentials
        return token_response(await sign_in(ctx, username, password, request_info(request)))
