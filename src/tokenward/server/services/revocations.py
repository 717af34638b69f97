"""Access-token revocation: deny a jti, bump a user's token version, move the global epoch.

INTERFACE STUB — implemented by the sessions work. Each change is written to the store
first (durable, survives restarts) and then applied to the node's RevocationView.
"""

from __future__ import annotations

from tokenward.server.context import AppContext

__all__ = ["Revocations"]


class Revocations:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def deny(self, jti: str, expires_at: float) -> None:
        raise NotImplementedError

    async def revoke_user_tokens(self, user_id: str) -> int:
        """Bump the user's token version: every access token issued before dies. Returns tv."""
        raise NotImplementedError

    async def revoke_all(self) -> float:
        """Move the global epoch to now: every token issued before dies. Returns the epoch."""
        raise NotImplementedError
