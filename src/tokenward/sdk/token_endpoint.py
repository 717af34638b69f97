"""The wire side of the client: requests to the issuer's login and refresh endpoints, and
what their answers mean. No state here; ``client.py`` decides when to call.

Two refresh dialects: the first-party JSON endpoint ``POST /api/v1/refresh``
(``{"refresh_token": ...}``), and the OAuth token endpoint (RFC 6749 §6: form-encoded
``grant_type=refresh_token``, the client authenticated per §2.3). Both answer with an
RFC 6749 §5.1 token response, and both name a refused token ``invalid_grant`` (§5.2).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tokenward.errors import AuthenticationFailed, ConfigError, RateLimited, SessionRevoked
from tokenward.sdk.token_store import TokenSet

__all__ = [
    "FIRST_PARTY_REFRESH",
    "LOGIN",
    "OAUTH_TOKEN",
    "TIMEOUT",
    "base_url",
    "bearer",
    "describe",
    "login_request",
    "refresh_request",
    "refreshed",
    "rejected",
    "signed_in",
]

FIRST_PARTY_REFRESH = "/api/v1/refresh"
OAUTH_TOKEN = "/oauth2/token"
LOGIN = "/api/v1/login"
TIMEOUT = 10.0
ACCEPT_JSON = {"Accept": "application/json"}
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def base_url(issuer_url: str) -> str:
    """The issuer's origin and path, refused unless https: we send passwords and tokens."""
    parts = urlsplit(issuer_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ConfigError("the issuer URL must be https (plain http only on loopback)")
    if parts.query or parts.fragment:
        raise ConfigError("the issuer URL must not carry a query or fragment")
    return issuer_url.rstrip("/")


def describe(error: httpx.HTTPError) -> str:
    """A failure, for logs: the status or the exception type, never a URL or a body."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


def bearer(request: httpx.Request, access_token: str) -> httpx.Request:
    """RFC 6750 §2.1: the token in the Authorization request header field."""
    request.headers["Authorization"] = f"Bearer {access_token}"
    return request


def rejected(response: httpx.Response) -> bool:
    """A 401 for our token (RFC 6750 §3), not a challenge for some other scheme."""
    if response.status_code != 401:
        return False
    challenge = response.headers.get("www-authenticate")
    return challenge is None or "bearer" in challenge.lower()


def _error_code(response: httpx.Response) -> str | None:
    """The RFC 6749 §5.2 ``error`` (also a member of our RFC 9457 problem bodies)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def refresh_request(
    http: httpx.Client | httpx.AsyncClient,
    url: str,
    refresh_token: str,
    client_id: str | None,
    client_secret: str | None,
) -> httpx.Request:
    """The refresh call, built on ``http`` so its default headers and event hooks apply."""
    if client_id is None:
        return http.build_request(
            "POST", url, json={"refresh_token": refresh_token}, headers=ACCEPT_JSON
        )
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = dict(ACCEPT_JSON)
    if client_secret is None:
        form["client_id"] = client_id  # a public client names itself (§2.3, §6)
    else:
        headers["Authorization"] = _basic(client_id, client_secret)
    return http.build_request("POST", url, data=form, headers=headers)


def _token_set(response: httpx.Response, started: float, previous: TokenSet | None) -> TokenSet:
    try:
        return TokenSet.from_response(response.json(), started, previous)
    except ValueError as exc:  # the message names the problem, never a value
        raise httpx.DecodingError(str(exc), request=response.request) from None


def refreshed(response: httpx.Response, current: TokenSet, started: float) -> TokenSet:
    """The new token set, ``SessionRevoked`` on ``invalid_grant``, else an httpx.HTTPError."""
    if response.is_success:
        return _token_set(response, started, current)
    if _error_code(response) == "invalid_grant":
        raise SessionRevoked("the server refused the refresh token (invalid_grant): log in again")
    raise httpx.HTTPStatusError(
        f"the refresh failed with HTTP {response.status_code}",
        request=response.request,
        response=response,
    )


def login_request(issuer_url: str, username: str, password: str) -> dict[str, Any]:
    """Keyword arguments for ``post``; ``cookie: false`` asks for the refresh token in the
    body even when the server's default is cookie mode."""
    body = {"username": username, "password": password, "cookie": False}
    return {"url": issuer_url + LOGIN, "json": body, "headers": ACCEPT_JSON}


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", "1"))
    except ValueError:  # an HTTP date: wait a little
        return 1.0


def signed_in(response: httpx.Response, started: float) -> TokenSet:
    """The token set from a login response; the errors a script can act on, else HTTPError."""
    if response.status_code == 401:
        raise AuthenticationFailed("wrong username or password")
    if response.status_code == 429:
        raise RateLimited("too many login attempts", retry_after=_retry_after(response))
    response.raise_for_status()
    try:
        mfa = response.json().get("mfa_required")
    except (ValueError, AttributeError):
        mfa = None
    if mfa:
        raise AuthenticationFailed("this account needs a second factor; use the web sign-in")
    return _token_set(response, started, None)
