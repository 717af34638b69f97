"""Minting access tokens for a user of a client (RFC 9068 ``at+jwt``).

Every access token carries our shared claims: ``roles`` (the user's roles), ``sid`` (the
refresh family it was minted from, when there is one) and ``tv`` (the user's token
version, RFC 9068 §2.2 leaves room for such private claims). The ``jti`` and ``exp`` are
returned with the token so the caller can record them (a family revoke denies them).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

import orjson

from tokenward.errors import OAuthError
from tokenward.server.context import AppContext
from tokenward.store.base import User

__all__ = ["AccessToken", "AccessTokens", "TokenPair", "hash_refresh_token", "narrowed_scope"]


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    jti: str
    exp: float
    scope: str


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh answers: the access token and the rotated refresh token."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    family_id: str
    scope: str
    token_type: str = "Bearer"


def hash_refresh_token(token: str) -> str:
    """The only form in which a refresh token is stored (SECURITY.md refresh rule 1)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _payload(token: str) -> dict[str, object]:
    """The claims of a token we have just signed ourselves (no verification needed)."""
    segment = token.split(".")[1]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    claims: dict[str, object] = orjson.loads(raw)
    return claims


class AccessTokens:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def mint(
        self, user: User, *, client_id: str, scope: str = "", session_id: str | None = None
    ) -> AccessToken:
        """An access token for ``user``; an empty ``scope`` leaves the claim out."""
        claims: dict[str, object] = {"roles": list(user.roles)}
        if session_id is not None:
            claims["sid"] = session_id
        token = self.ctx.issuer.issue(
            user.id,
            self.ctx.settings.effective_audience,
            scope=scope or None,
            client_id=client_id,
            ttl=self.ctx.settings.access_ttl,
            claims=claims,
            token_version=user.token_version,
        )
        payload = _payload(token)
        exp = payload["exp"]
        assert isinstance(exp, int | float)
        return AccessToken(token=token, jti=str(payload["jti"]), exp=float(exp), scope=scope)

    def expires_in(self, token: AccessToken) -> int:
        """RFC 6749 §5.1 ``expires_in``: seconds from now."""
        return max(0, int(token.exp - self.ctx.clock()))


def narrowed_scope(granted: str, requested: str | None) -> str:
    """RFC 6749 §6: the requested scope must not include any scope not originally granted."""
    if not requested:
        return granted
    wanted = requested.split()
    if not set(wanted) <= set(granted.split()):
        raise OAuthError("invalid_scope", "the requested scope exceeds the granted scope")
    return " ".join(dict.fromkeys(wanted))
