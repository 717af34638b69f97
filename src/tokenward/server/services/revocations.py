"""Access-token revocation: deny a jti, bump a user's token version, move the global epoch.

Each change is written to the store first (durable, survives restarts) and then applied
to this node's RevocationView (SECURITY.md R22: revocation keys on ``jti``, the per-user
token version and the global epoch, never on the token string). Callers audit the change
(they know the request and the reason); this module only counts it.
"""

from __future__ import annotations

import math

from tokenward.server.context import AppContext

__all__ = ["Revocations"]


class Revocations:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def deny(self, jti: str, expires_at: float) -> None:
        """Deny one access token until it would have expired anyway."""
        if not jti:
            return
        await self.ctx.store.deny_jti(jti, expires_at)
        self.ctx.revocation.deny(jti, expires_at)
        self.ctx.metrics.revocations.labels(kind="jti").inc()

    async def revoke_user_tokens(self, user_id: str) -> int:
        """Bump the user's token version: every access token issued before dies. Returns tv."""
        version = await self.ctx.store.bump_token_version(user_id)
        self.ctx.revocation.set_token_version(self.ctx.settings.issuer, user_id, version)
        self.ctx.metrics.revocations.labels(kind="user").inc()
        return version

    async def revoke_all(self) -> float:
        """Move the global epoch to now: every token issued before dies. Returns the epoch.

        ``iat`` has one-second granularity (RFC 7519 §2 NumericDate as we issue it), so a
        token issued earlier in the current second is indistinguishable from one issued
        later in it: the epoch moves to the next whole second and both die (fail closed).
        """
        epoch = float(math.floor(self.ctx.clock()) + 1)
        await self.ctx.store.set_epoch(epoch)
        self.ctx.revocation.set_epoch(epoch)
        self.ctx.metrics.revocations.labels(kind="all").inc()
        return epoch
