"""Cookie mode: the refresh token in an HttpOnly cookie, and double-submit CSRF protection.

Names use the ``__Host-`` prefix (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain) so a
sibling subdomain cannot plant them; with a cookie domain (or without Secure, in dev over
plain http) the prefix is not allowed and the bare names are used. Every state change
authenticated by the cookie needs an ``X-CSRF-Token`` header equal to the readable CSRF
cookie set at login (OWASP CSRF cheat sheet, double-submit cookie), besides SameSite.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from tokenward.errors import TokenwardError
from tokenward.server.settings import Settings

__all__ = [
    "CSRF_HEADER",
    "CookieNames",
    "CsrfFailed",
    "check_csrf",
    "clear_session_cookies",
    "cookie_names",
    "refresh_cookie",
    "set_refresh_cookie",
    "set_session_cookies",
]

CSRF_HEADER = "X-CSRF-Token"
MAX_COOKIE_VALUE = 512


class CsrfFailed(TokenwardError):
    """A cookie-authenticated state change without the matching CSRF header."""

    error = "csrf_failed"
    status = 403
    expose = True
    code = "csrf_failed"


@dataclass(frozen=True)
class CookieNames:
    refresh: str
    csrf: str
    host_prefixed: bool


def cookie_names(settings: Settings) -> CookieNames:
    if settings.cookie_domain or not settings.cookie_secure:
        return CookieNames("tokenward_refresh", "tokenward_csrf", host_prefixed=False)
    return CookieNames("__Host-tokenward_refresh", "__Host-tokenward_csrf", host_prefixed=True)


def _set(
    response: Response, settings: Settings, name: str, value: str, *, http_only: bool, max_age: int
) -> None:
    names = cookie_names(settings)
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=settings.cookie_secure,
        httponly=http_only,
        samesite=settings.cookie_samesite,
        domain=None if names.host_prefixed else settings.cookie_domain,
    )


def set_refresh_cookie(response: Response, settings: Settings, refresh_token: str) -> None:
    """The refresh token, HttpOnly: page scripts never see it."""
    _set(
        response,
        settings,
        cookie_names(settings).refresh,
        refresh_token,
        http_only=True,
        max_age=settings.refresh_absolute_ttl,
    )


def set_session_cookies(response: Response, settings: Settings, refresh_token: str) -> str:
    """At login: the refresh cookie and a fresh CSRF cookie (readable); returns the CSRF value."""
    csrf = secrets.token_urlsafe(32)
    set_refresh_cookie(response, settings, refresh_token)
    _set(
        response,
        settings,
        cookie_names(settings).csrf,
        csrf,
        http_only=False,
        max_age=settings.refresh_absolute_ttl,
    )
    return csrf


def clear_session_cookies(response: Response, settings: Settings) -> None:
    """Expire both cookies with the attributes they were set with (else browsers keep them)."""
    names = cookie_names(settings)
    for name, http_only in ((names.refresh, True), (names.csrf, False)):
        response.delete_cookie(
            name,
            path="/",
            secure=settings.cookie_secure,
            httponly=http_only,
            samesite=settings.cookie_samesite,
            domain=None if names.host_prefixed else settings.cookie_domain,
        )


def refresh_cookie(request: Request, settings: Settings) -> str | None:
    """The refresh token from its cookie, if the request carries one."""
    value = request.cookies.get(cookie_names(settings).refresh)
    return value if value and len(value) <= MAX_COOKIE_VALUE else None


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def check_csrf(request: Request, settings: Settings) -> None:
    """Double-submit check: header and cookie present and equal (constant-time compare)."""
    cookie = request.cookies.get(cookie_names(settings).csrf, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not header or len(header) > MAX_COOKIE_VALUE:
        raise CsrfFailed("the X-CSRF-Token header is missing or does not match the CSRF cookie")
    if not hmac.compare_digest(_bytes(cookie), _bytes(header)):
        raise CsrfFailed("the X-CSRF-Token header is missing or does not match the CSRF cookie")
