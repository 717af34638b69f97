"""Token introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients.

Access tokens are checked by the node's verifier (signature, claims, revocation view) and
then against the store, which is authoritative for the subject (disabled account, token
version). Refresh tokens are opaque: found by their SHA-256 in the store, live only while
the token is ``active`` and its family is neither revoked nor expired. Anything not
currently valid is ``{"active": false}`` and nothing more (RFC 7662 §2.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tokenward.errors import InvalidToken, OAuthError
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.services.revocations import Revocations
from tokenward.server.services.sessions import Sessions, hash_refresh_token
from tokenward.store.base import Client, Family, RefreshState, RefreshToken, User

__all__ = ["INACTIVE", "Introspection"]

INACTIVE: dict[str, Any] = {"active": False}
MAX_REFRESH_LEN = 512  # opaque refresh tokens are far shorter; longer is never one of ours
ACCESS_FIELDS = ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti")

Lookup = Callable[[str, Client], Awaitable[dict[str, Any] | None]]


def _order(hint: str | None) -> tuple[str, str]:
    # RFC 7662 §2.1 / RFC 7009 §2.1: the hint only orders the search; an unknown hint is ignored.
    return (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )


def _not_yours() -> OAuthError:
    # RFC 7009 §2.1: a client may only revoke tokens that were issued to it.
    return OAuthError("unauthorized_client", "the token was not issued to this client")


class Introspection:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # -- RFC 7662 ---------------------------------------------------------------------------
    async def introspect(self, token: str, *, hint: str | None, caller: Client) -> dict[str, Any]:
        lookups: dict[str, Lookup] = {"access_token": self._access, "refresh_token": self._refresh}
        for kind in _order(hint):
            found = await lookups[kind](token, caller)
            if found is not None:
                return found
        return dict(INACTIVE)

    async def _access(self, token: str, caller: Client) -> dict[str, Any] | None:
        valid = await self._valid_access(token)
        if valid is None:
            return None
        claims, username = valid
        body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        body.update((k, claims[k]) for k in ACCESS_FIELDS if k in claims)
        if username is not None:
            body["username"] = username
        return body

    async def _refresh(self, token: str, caller: Client) -> dict[str, Any] | None:
        live = await self._live_refresh(token)
        if live is None or live[0].client_id != caller.client_id:
            return None  # another client's refresh token is not its business
        rt, family, user = live
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": rt.client_id,
            "sub": rt.user_id,
            "username": user.username,
            "scope": rt.scope,
            "exp": int(min(rt.expires_at, family.expires_at, family.idle_expires_at)),
            "iat": int(rt.created_at),
            "iss": self.ctx.settings.issuer,
        }

    async def _valid_access(self, token: str) -> tuple[dict[str, Any], str | None] | None:
        """The claims of a currently valid access token and its user's name, or None."""
        try:
            claims = self.ctx.verifier.verify(token)
        except InvalidToken:
            return None
        sub = claims["sub"]
        if sub == claims.get("client_id"):  # client_credentials: the client must be enabled
            client = await self.ctx.store.get_client(sub)
            return (claims, None) if client is not None and not client.disabled else None
        user = await self.ctx.store.get_user(sub)
        # The store is authoritative across nodes: a disabled account or a newer token
        # version kills the token even if this node's revocation view has not heard yet.
        if user is None or user.disabled or claims.get("tv", 0) < user.token_version:
            return None
        return claims, user.username

    async def _live_refresh(self, token: str) -> tuple[RefreshToken, Family, User] | None:
        """An active refresh token of a live family of an enabled user (any client), or None."""
        if not token or len(token) > MAX_REFRESH_LEN:
            return None
        rt = await self.ctx.store.get_refresh(hash_refresh_token(token))
        now = self.ctx.clock()
        if rt is None or rt.state is not RefreshState.ACTIVE or rt.expires_at <= now:
            return None
        family = await self.ctx.store.get_family(rt.family_id)
        if family is None or not family.active:
            return None
        if min(family.expires_at, family.idle_expires_at) <= now:
            return None
        user = await self.ctx.store.get_user(rt.user_id)
        return (rt, family, user) if user is not None and not user.disabled else None

    # -- RFC 7009 ---------------------------------------------------------------------------
    async def revoke(
        self, token: str, *, hint: str | None, caller: Client, request: RequestInfo
    ) -> None:
        """Revoke if it is ours and the caller's; unknown or invalid tokens are a no-op (§2.2)."""
        revokers = {"access_token": self._revoke_access, "refresh_token": self._revoke_refresh}
        for kind in _order(hint):
            if await revokers[kind](token, caller, request):
                return

    async def _revoke_refresh(self, token: str, caller: Client, request: RequestInfo) -> bool:
        if not token or len(token) > MAX_REFRESH_LEN:
            return False
        rt = await self.ctx.store.get_refresh(hash_refresh_token(token))
        if rt is None:
            return False
        if rt.client_id != caller.client_id:
            raise _not_yours()
        family = await self.ctx.store.get_family(rt.family_id)
        if family is not None and family.active:
            # §2.1: revoking a refresh token ends the grant; the whole family goes, with
            # the access tokens minted from it.
            await Sessions(self.ctx).end(rt.family_id, reason="revoked", request=request)
        return True

    async def _revoke_access(self, token: str, caller: Client, request: RequestInfo) -> bool:
        try:
            claims = self.ctx.verifier.verify(token)
        except InvalidToken:
            return False  # expired, revoked or not ours: nothing left to revoke
        if claims.get("client_id") != caller.client_id:
            raise _not_yours()
        await Revocations(self.ctx).deny(claims["jti"], float(claims["exp"]))
        await self.ctx.audit.emit(
            "token.revoked",
            user_id=claims["sub"],
            request=request,
            session_id=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
            client_id=caller.client_id,
            jti=claims["jti"],
        )
        return True
