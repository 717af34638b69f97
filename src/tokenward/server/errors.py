"""The ONLY place exceptions become HTTP responses.

Shapes: RFC 6749 §5.2 ``{"error", "error_description"}`` on /oauth2/*; RFC 6750 §3
``WWW-Authenticate: Bearer`` on token failures; RFC 9457 ``application/problem+json``
everywhere else (with our stable ``error`` code as an extension member). Nothing raised
anywhere becomes a traceback for the client; unexpected errors are logged and answered
with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenward.errors import (
    AccessDenied,
    InvalidToken,
    OAuthError,
    RateLimited,
    StoreUnavailable,
    TokenwardError,
)
from tokenward.sdk.guard import problem_document

__all__ = [
    "error_response",
    "install_error_handlers",
    "problem",
    "unexpected_response",
]

log = logging.getLogger("tokenward.server")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _is_oauth(request: Request) -> bool:
    return request.url.path.startswith("/oauth2/")


def problem(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """RFC 9457 problem details."""
    body = problem_document(status, error, detail, **extra)
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def oauth_error(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """RFC 6749 §5.2 error response."""
    body = {"error": error, "error_description": detail}
    return JSONResponse(body, status, headers={**NO_STORE, **(headers or {})})


def _bearer_challenge(exc: TokenwardError) -> str:
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    if exc.code == "missing_token":
        return 'Bearer realm="tokenward"'
    return f'Bearer realm="tokenward", error="{exc.error}"'


def _headers_for(exc: TokenwardError) -> dict[str, str]:
    if isinstance(exc, InvalidToken | AccessDenied):
        return {"WWW-Authenticate": _bearer_challenge(exc)}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, StoreUnavailable):
        return {"Retry-After": "5"}
    if isinstance(exc, OAuthError) and exc.error == "invalid_client":
        return {"WWW-Authenticate": 'Basic realm="tokenward"'}
    return {}


def error_response(exc: TokenwardError, *, oauth: bool) -> JSONResponse:
    """The response for a TokenwardError; ``oauth``: the request was to /oauth2/*.

    Also called directly by the plain-ASGI refresh path (routes/refresh.py), which answers
    ahead of the exception handlers."""
    if not exc.expose:
        log.error("unexposed error %s: %s", type(exc).__name__, exc.code)
        return problem(500, "server_error", "internal error")
    # R21: every token rejection looks the same on the wire, whatever the cause.
    detail = "the access token is invalid" if isinstance(exc, InvalidToken) else exc.detail
    if exc.code == "missing_token":
        detail = "authentication required"
    if oauth and not isinstance(exc, InvalidToken):
        return oauth_error(exc.status, exc.error, detail, _headers_for(exc))
    return problem(exc.status, exc.error, detail, _headers_for(exc))


async def _tokenward_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TokenwardError)
    return error_response(exc, oauth=_is_oauth(request))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Never echo the input back: it may be a password.
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ][:20]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'][1:]) or 'body'}: {first['msg']}"
    if _is_oauth(request):
        return oauth_error(400, "invalid_request", detail)
    return problem(400, "invalid_request", detail, errors=errors)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    503: "temporarily_unavailable",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    error = _HTTP_CODES.get(status, "http_error")
    return problem(status, error, str(exc.detail), dict(exc.headers or {}))


def unexpected_response(method: str, path: str) -> JSONResponse:
    """A bare 500 for an unexpected exception, logged with its traceback (call it from the
    ``except`` block); the client learns nothing of it."""
    log.exception("unhandled error on %s %s", method, path)
    return problem(500, "server_error", "internal error")


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_response(request.method, request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TokenwardError, _tokenward_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
