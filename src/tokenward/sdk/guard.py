"""The half of the core that speaks HTTP: ``Authorization`` header -> Principal, refusal ->
status, ``WWW-Authenticate`` and RFC 9457 body.

The adapters (asgi.py, starlette.py, fastapi.py, flask.py, django.py) only translate
between their framework's request and response types and :class:`Guard`, so a request is
accepted or refused the same way — same status, challenge and body — everywhere.

Two rules from RFC 6750 §3.1 decide the 401s: a request that carries no Bearer credentials
(no ``Authorization`` header, or another scheme such as ``Basic``) gets a challenge without
an ``error`` attribute; a request whose Bearer token is refused gets ``error="invalid_token"``,
the same for every cause (SECURITY.md R21). Missing rights are a 403 with
``error="insufficient_scope"`` and, when scopes were required, the ``scope`` attribute.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from tokenward.errors import AccessDenied, InvalidToken, MalformedToken
from tokenward.sdk.principal import ANY, Principal, PrincipalFactory, Requirement

__all__ = [
    "AUTH_ERRORS",
    "PROBLEM_JSON",
    "Failure",
    "Guard",
    "TokenVerifier",
    "bearer_token",
    "problem_document",
]

log = logging.getLogger("tokenward.sdk")

PROBLEM_JSON = "application/problem+json"  # RFC 9457 §3
AUTH_ERRORS = (InvalidToken, AccessDenied)


def problem_document(status: int, error: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body every HTTP refusal of tokenward carries (server and SDK alike),
    with the RFC 6749 / 6750 ``error`` code as an extension member (RFC 9457 §3.2)."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": error,
        **extra,
    }


class TokenVerifier(Protocol):
    """What the adapters need from a verifier: :class:`tokenward.Verifier` is one."""

    def verify(self, token: str) -> dict[str, Any]: ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1).

    None when there are no Bearer credentials at all (no header, or another scheme: RFC
    6750 §3.1 answers those without an error code); MalformedToken when the header says
    Bearer but what follows is not one token (none, several, a comma-joined repeat of the
    header, non-ASCII). The b64token alphabet itself is left to the verifier, which checks
    the stricter base64url one anyway (R3): a regex over the token here doubled our cost.
    """
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":  # auth-scheme is case-insensitive (RFC 9110 §11.1)
        return None
    token = rest.strip(" ")
    if not token or not token.isascii() or " " in token or "," in token or "\t" in token:
        raise MalformedToken("the Authorization header does not hold one Bearer token")
    return token


@dataclass(frozen=True, slots=True)
class Failure:
    """A refusal as HTTP: status, headers (lower-case names) and an RFC 9457 body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    problem: dict[str, Any]

    @property
    def body(self) -> bytes:
        return orjson.dumps(self.problem)

    @property
    def challenge(self) -> str:
        return dict(self.headers)["www-authenticate"]


def _error(exc: InvalidToken | AccessDenied) -> str:
    return "invalid_token" if isinstance(exc, InvalidToken) else "insufficient_scope"


class Guard:
    """Verifier + principal factory + realm: what every adapter holds, configured once.

    The Principal of a token is built once and reused for every request that carries the
    same ``Authorization`` header, while the verifier still checks the token each time
    (expiry, revocation, key): a token's signature binds its claims, so the same token
    always yields the same Principal, and building it again was a third of what the SDK
    spent on a request with a cached token (bench/middleware_overhead.py). The Principal's
    claims are therefore read-only. ``principal_cache_size=0`` turns the cache off.
    """

    __slots__ = ("_known", "_known_size", "principal_factory", "realm", "verifier")

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        principal_factory: PrincipalFactory = Principal.from_claims,
        realm: str = "tokenward",
        principal_cache_size: int = 4096,
    ) -> None:
        if not callable(getattr(verifier, "verify", None)):
            raise TypeError("verifier must have a verify(token) method")
        if not re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]*", realm):
            raise ValueError("realm must be printable ASCII without '\"' or '\\'")
        self.verifier, self.principal_factory, self.realm = verifier, principal_factory, realm
        # Authorization header -> (its token, the token's Principal), oldest first
        self._known: OrderedDict[str | bytes, tuple[str, Principal]] = OrderedDict()
        self._known_size = principal_cache_size

    def __repr__(self) -> str:
        return f"Guard({self.verifier!r}, realm={self.realm!r})"

    def authenticate(self, authorization: str | bytes | None) -> Principal | None:
        """The caller, None when anonymous; InvalidToken when a Bearer token is refused.

        ``authorization`` is the header's value, as text or as the bytes an ASGI server
        hands over (ISO-8859-1, RFC 9110 §5.5)."""
        known = self._known.get(authorization) if authorization else None
        if known is not None:
            token: str | None = known[0]
        elif isinstance(authorization, bytes):
            token = bearer_token(authorization.decode("latin-1"))
        else:
            token = bearer_token(authorization)
        if token is None:
            return None
        try:
            claims = self.verifier.verify(token)  # every time: expiry, revocation, key
        except InvalidToken as exc:
            log.debug("bearer token refused: %s", exc.code)  # the reason only, never the token
            raise
        if known is not None:
            return known[1]
        principal = self.principal_factory(MappingProxyType(claims))
        if self._known_size and authorization:
            if len(self._known) >= self._known_size:
                # oldest first; threads of a WSGI server may race to evict the same one
                with contextlib.suppress(KeyError):
                    self._known.popitem(last=False)
            self._known[authorization] = (token, principal)
        return principal

    def authorize(self, principal: Principal | None, need: Requirement = ANY) -> Principal:
        if principal is None:
            raise InvalidToken("authentication required", code="missing_token")
        return principal if need is ANY else need(principal)

    def check(self, authorization: str | None, need: Requirement = ANY) -> Principal:
        """authenticate + authorize: a Principal, or InvalidToken / MissingRights."""
        return self.authorize(self.authenticate(authorization), need)

    def challenge(self, exc: InvalidToken | AccessDenied) -> str:
        """The RFC 6750 §3 ``WWW-Authenticate`` value for a refusal."""
        value = f'Bearer realm="{self.realm}"'
        if exc.code == "missing_token":
            return value  # §3.1: no error code when there were no credentials
        value += f', error="{_error(exc)}"'
        scopes = getattr(exc, "required_scopes", ())
        return value + f', scope="{" ".join(scopes)}"' if scopes else value

    def failure(self, exc: InvalidToken | AccessDenied) -> Failure:
        error = _error(exc)
        if isinstance(exc, InvalidToken):  # R21: one shape, whatever the cause
            status, detail = 401, "the access token is invalid"
            if exc.code == "missing_token":
                detail = "authentication required"
        else:
            status, detail = 403, exc.detail
        problem = problem_document(status, error, detail)
        headers = (("www-authenticate", self.challenge(exc)), ("content-type", PROBLEM_JSON))
        return Failure(status, headers, problem)
