"""Refresh families: start, rotate with reuse detection, end (SECURITY.md "Refresh tokens").

INTERFACE STUB — implemented by the sessions work; signatures are the contract other
modules code against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.store.base import Family, User

__all__ = ["Sessions", "TokenPair"]


@dataclass(frozen=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    family_id: str
    scope: str
    token_type: str = "Bearer"


class Sessions:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def start(
        self, user: User, *, client_id: str, scope: str, request: RequestInfo
    ) -> TokenPair:
        """New family (session) for ``user`` + its first refresh token + an access token."""
        raise NotImplementedError

    async def refresh(
        self, refresh_token: str, *, client_id: str, scope: str | None, request: RequestInfo
    ) -> TokenPair:
        """Rotate: raises OAuthError("invalid_grant") on unknown/expired/reused/wrong client."""
        raise NotImplementedError

    async def end(self, family_id: str, *, reason: str, request: RequestInfo) -> None:
        """Revoke one family and deny the access tokens minted from it."""
        raise NotImplementedError

    async def end_all(
        self, user_id: str, *, reason: str, request: RequestInfo, keep: str | None = None
    ) -> int:
        """Revoke every family of the user (except ``keep``); returns how many."""
        raise NotImplementedError

    async def list(self, user_id: str) -> Sequence[Family]:
        raise NotImplementedError
