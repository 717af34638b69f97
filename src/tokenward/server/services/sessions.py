"""Refresh families: start, rotate with reuse detection, end (SECURITY.md "Refresh tokens").

Refresh tokens are opaque, 256 random bits (SECURITY.md refresh rule 1), stored only as
their SHA-256. A refresh is one compare-and-set ``active -> used`` plus the child's insert
in the store (rule 2); presenting a used token revokes the family and the access tokens
minted from it (rule 3, RFC 9700 §4.14.2), except the immediately previous token inside
the optional grace window. Families die on absolute lifetime and idle timeout (rule 4);
a token is bound to its client and may only narrow its scope (rule 5, RFC 6749 §6).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence

from tokenward.errors import OAuthError
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.services.revocations import Revocations
from tokenward.server.services.tokens import (
    AccessToken,
    AccessTokens,
    TokenPair,
    hash_refresh_token,
    narrowed_scope,
)
from tokenward.store.base import (
    AuditEvent,
    Family,
    RefreshSession,
    RefreshState,
    RefreshToken,
    RotateOutcome,
    User,
)

__all__ = ["Sessions", "TokenPair", "hash_refresh_token"]

# Audit event for ending sessions, by reason; other reasons (password change, disable)
# are audited by the caller under its own event.
_END_EVENTS = {
    "logout": "logout",
    "logout_all": "logout_all",
    "revoked": "session.revoked",
    "admin": "session.revoked",
}
_INVALID = "the refresh token is invalid, expired or revoked"


def _invalid_grant() -> OAuthError:
    # RFC 6749 §5.2: one answer for unknown, expired, revoked, reused and foreign tokens.
    return OAuthError("invalid_grant", _INVALID)


class Sessions:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._tokens = AccessTokens(ctx)
        self._revocations = Revocations(ctx)

    # -- start --------------------------------------------------------------------------
    async def start(
        self,
        user: User,
        *,
        client_id: str,
        scope: str,
        request: RequestInfo,
        audit: Callable[[Family], AuditEvent] | None = None,
    ) -> TokenPair:
        """New family (session) for ``user`` + its first refresh token + an access token.

        ``audit`` makes the event recording it (the sign-in), stored in the family's own
        transaction and logged once that committed.
        """
        now, settings = self.ctx.clock(), self.ctx.settings
        family = Family(
            id=uuid.uuid4().hex,
            user_id=user.id,
            client_id=client_id,
            scope=scope,
            created_at=now,
            last_used_at=now,
            expires_at=now + settings.refresh_absolute_ttl,
            idle_expires_at=self._idle_deadline(now, now + settings.refresh_absolute_ttl),
            user_agent=request.user_agent,
            ip=request.ip,
        )
        access = self._tokens.mint(user, client_id=client_id, scope=scope, session_id=family.id)
        token, first = self._member(family, access, generation=0, parent=None, now=now)
        event = None if audit is None else audit(family)
        await self.ctx.store.start_family(family, first, audit=event)
        if event is not None:
            self.ctx.audit.log(event)
        return self._pair(access, token, family.id)

    # -- refresh ------------------------------------------------------------------------
    async def refresh(
        self, refresh_token: str, *, client_id: str, scope: str | None, request: RequestInfo
    ) -> TokenPair:
        """Rotate: raises OAuthError("invalid_grant") on unknown/expired/reused/wrong client."""
        now = self.ctx.clock()
        # one read for the token, its family and its user; one transaction for the rest
        session = await self.ctx.store.get_refresh_session(hash_refresh_token(refresh_token))
        if session is None or session.token.client_id != client_id:
            raise self._refused("invalid")
        # per account (SECURITY.md "Accounts"): a leaked token cannot be spun without bound
        self.ctx.limiter.hit("token:account", f"user:{session.token.user_id}")
        presented = session.token
        granted = narrowed_scope(presented.scope, scope)
        family, user = self._live_family(session, now)
        access = self._tokens.mint(user, client_id=client_id, scope=granted, session_id=family.id)
        generation, parent = presented.generation + 1, presented.token_hash
        token, child = self._member(family, access, generation=generation, parent=parent, now=now)
        idle = self._idle_deadline(now, family.expires_at)
        audit = self._rotated_event(family, user, child, request, grace=False)
        result = await self.ctx.store.rotate_refresh(
            presented.token_hash, child, now, idle, audit=audit
        )
        if result.outcome is RotateOutcome.ROTATED:
            self.ctx.metrics.refreshes.labels(result="rotated").inc()
            self.ctx.audit.log(audit)  # stored with the rotation, logged once it committed
            return self._pair(access, token, family.id)
        if result.outcome is RotateOutcome.REUSED and result.token is not None:
            grace = self._rotated_event(family, user, child, request, grace=True)
            if await self._grace(result.token, child, now, idle, audit=grace):
                return self._pair(access, token, family.id)
            await self._reuse_detected(result.token, user, request)
        raise self._refused("invalid")

    def _live_family(self, session: RefreshSession, now: float) -> tuple[Family, User]:
        """The token's family and user, if both may still be used (rules 4 and account state)."""
        presented, family, user = session.token, session.family, session.user
        if family is None or family.revoked_at is not None:
            raise self._refused("revoked")
        if now >= family.expires_at or now >= family.idle_expires_at:
            raise self._refused("expired")
        # A used token skips its own expiry so that replaying it still counts as reuse.
        if presented.state is RefreshState.ACTIVE and now >= presented.expires_at:
            raise self._refused("expired")
        if user is None or user.disabled:
            raise self._refused("user_inactive")
        return family, user

    async def _grace(
        self,
        presented: RefreshToken,
        child: RefreshToken,
        now: float,
        idle: float,
        *,
        audit: AuditEvent,
    ) -> bool:
        """Rule 3's grace window: only the immediate parent of the active token, once, briefly.

        The store atomically replaces the parent's active child (the newest member) with
        ``child``, so exactly one member stays active; a second presentation of the parent
        finds its grace spent and counts as reuse. The replaced child's access token dies.
        """
        window = self.ctx.settings.refresh_grace_seconds
        if window <= 0 or presented.state is not RefreshState.USED or presented.used_at is None:
            return False
        if now - presented.used_at > window:
            return False
        replaced = await self.ctx.store.regrant_refresh(presented.token_hash, child, now, idle)
        if replaced is None:
            return False
        if replaced.access_jti:
            await self._revocations.deny(replaced.access_jti, replaced.access_exp)
        self.ctx.metrics.refreshes.labels(result="grace").inc()
        await self.ctx.audit.record(audit)
        return True

    async def _reuse_detected(
        self, presented: RefreshToken, user: User, request: RequestInfo
    ) -> None:
        """RFC 9700 §4.14.2: a replayed refresh token kills the whole family."""
        await self._revoke_family(presented.family_id, "reuse_detected")
        self.ctx.metrics.reuse_detected.inc()
        await self.ctx.audit.emit(
            "refresh.reuse_detected",
            user_id=user.id,
            username=user.username,
            request=request,
            session_id=presented.family_id,
            generation=presented.generation,
            state=str(presented.state),
        )

    def _rotated_event(
        self, family: Family, user: User, child: RefreshToken, request: RequestInfo, *, grace: bool
    ) -> AuditEvent:
        return self.ctx.audit.event(
            "refresh.rotated",
            user_id=user.id,
            username=user.username,
            request=request,
            session_id=family.id,
            generation=child.generation,
            grace=grace,
        )

    def _refused(self, reason: str) -> OAuthError:
        self.ctx.metrics.refreshes.labels(result=reason).inc()
        return _invalid_grant()

    # -- building blocks ----------------------------------------------------------------
    def _idle_deadline(self, now: float, absolute: float) -> float:
        return min(absolute, now + self.ctx.settings.refresh_idle_ttl)

    def _member(
        self,
        family: Family,
        access: AccessToken,
        *,
        generation: int,
        parent: str | None,
        now: float,
    ) -> tuple[str, RefreshToken]:
        """A fresh opaque refresh token (256 bits, rule 1) and its stored record."""
        token = secrets.token_urlsafe(32)
        record = RefreshToken(
            token_hash=hash_refresh_token(token),
            family_id=family.id,
            generation=generation,
            parent_hash=parent,
            client_id=family.client_id,
            user_id=family.user_id,
            scope=family.scope,
            created_at=now,
            expires_at=self._idle_deadline(now, family.expires_at),
            access_jti=access.jti,
            access_exp=access.exp,
        )
        return token, record

    def _pair(self, access: AccessToken, refresh_token: str, family_id: str) -> TokenPair:
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh_token,
            expires_in=self._tokens.expires_in(access),
            family_id=family_id,
            scope=access.scope,
        )

    async def _revoke_family(self, family_id: str, reason: str) -> None:
        denied = await self.ctx.store.revoke_family(family_id, reason, self.ctx.clock())
        for jti, exp in denied:
            await self._revocations.deny(jti, exp)

    # -- end ----------------------------------------------------------------------------
    async def end(self, family_id: str, *, reason: str, request: RequestInfo) -> None:
        """Revoke one family and deny the access tokens minted from it."""
        family = await self.ctx.store.get_family(family_id)
        await self._revoke_family(family_id, reason)
        event = _END_EVENTS.get(reason)
        if event is not None and family is not None:
            await self.ctx.audit.emit(
                event,
                user_id=family.user_id,
                request=request,
                session_id=family_id,
                reason=reason,
            )

    async def end_all(
        self, user_id: str, *, reason: str, request: RequestInfo, keep: str | None = None
    ) -> int:
        """Revoke every family of the user (except ``keep``); returns how many."""
        ended = [f.id for f in await self.ctx.store.list_families(user_id) if f.id != keep]
        denied = await self.ctx.store.revoke_user_families(
            user_id, reason, self.ctx.clock(), keep=keep
        )
        for jti, exp in denied:
            await self._revocations.deny(jti, exp)
        event = _END_EVENTS.get(reason)
        if event is not None and (ended or reason == "logout_all"):  # no noise for no-ops
            await self.ctx.audit.emit(
                event,
                user_id=user_id,
                request=request,
                session_id=keep,
                reason=reason,
                sessions=len(ended),
            )
        return len(ended)

    async def list(self, user_id: str) -> Sequence[Family]:
        """The user's live sessions (revoked or expired families left out)."""
        now = self.ctx.clock()
        families = await self.ctx.store.list_families(user_id, active_only=True)
        return [f for f in families if now < f.expires_at and now < f.idle_expires_at]

    async def family_of(self, refresh_token: str, *, client_id: str) -> str | None:
        """The family id of a refresh token of ``client_id`` (logout by cookie), if any."""
        record = await self.ctx.store.get_refresh(hash_refresh_token(refresh_token))
        if record is None or record.client_id != client_id:
            return None
        return record.family_id
