"""Access-token revocation: deny a jti, bump a user's token version, move the global epoch,
remove a key.

Each change is written to the store first (durable, survives restarts), then applied to
this node's RevocationView, then recorded as a revocation event with a cursor and pushed
to the other nodes and to resource servers (server/events.py, docs/scale-out.md).
SECURITY.md R22: revocation keys on ``jti``, the per-user token version and the global
epoch, never on the token string. Callers audit the change (they know the request and
the reason); this module only counts it.

A crash between the state write and the event leaves the revocation durable (every node
loads it when it starts) but not pushed; the window is one store round trip.
"""

from __future__ import annotations

import math

from tokenward.keys import KeyRing, KeyState
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
        await self.ctx.events.publish("deny", {"jti": jti, "exp": float(expires_at)})
        self.ctx.metrics.revocations.labels(kind="jti").inc()

    async def revoke_user_tokens(self, user_id: str) -> int:
        """Bump the user's token version: every access token issued before dies. Returns tv."""
        version = await self.ctx.store.bump_token_version(user_id)
        issuer = self.ctx.settings.issuer
        self.ctx.revocation.set_token_version(issuer, user_id, version)
        await self.ctx.events.publish(
            "token_version", {"iss": issuer, "sub": user_id, "version": version}
        )
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
        await self.ctx.events.publish("epoch", {"epoch": epoch})
        self.ctx.metrics.revocations.labels(kind="all").inc()
        return epoch

    async def remove_key(self, kid: str) -> bool:
        """A compromised key: drop it from the shared ring (a new active key takes over if
        it was signing) and revoke every token it signed, everywhere. False if unknown."""
        alg, now = self.ctx.settings.signing_alg, self.ctx.clock()

        def drop(ring: KeyRing) -> bool:
            if all(k.kid != kid for k in ring):
                return False
            if any(k.kid == kid and k.state is KeyState.ACTIVE for k in ring):
                ring.generate(alg, now)  # the replacement signs from now on
            ring.replace(k for k in ring if k.kid != kid)
            return True

        if not await self.ctx.keys.update(drop):
            return False
        self.ctx.revocation.remove_kid(kid)
        await self.ctx.events.publish("remove_kid", {"kid": kid})
        self.ctx.metrics.revocations.labels(kind="key").inc()
        return True
