"""Accounts: create, authenticate (constant-time for unknown users), lock out, change password.

SECURITY.md "Accounts and the login endpoint": argon2id (OWASP parameters) with rehash on
login, a dummy verify for unknown users so neither the answer nor its timing tells
whether an account exists, per-IP and per-account rate limits and a progressive lockout
stored on the user. Hashing runs in a worker thread: argon2 releases the GIL and must not
stall the event loop.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from tokenward.errors import AuthenticationFailed, BadRequest, Conflict, NotFound, RateLimited
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.lockout import LockPolicy, lock_until
from tokenward.server.services.revocations import Revocations
from tokenward.server.services.sessions import Sessions, TokenPair
from tokenward.store.base import AuditEvent, Family, User

__all__ = ["ROLE_PATTERN", "USERNAME_PATTERN", "Accounts", "canonical_username"]

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")
ROLE_PATTERN = re.compile(r"[A-Za-z0-9:._-]{1,64}")
_BAD_CREDENTIALS = "invalid username or password"


def canonical_username(name: str) -> str:
    """Usernames are case-insensitive: "Alice" and "alice" name one account (no look-alike
    second account, the same lockout and rate-limit key). They are ASCII by
    USERNAME_PATTERN, so lower() is the whole folding."""
    return name.lower()


class Accounts:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # -- create -------------------------------------------------------------------------
    async def create(self, username: str, password: str, *, roles: Sequence[str] = ()) -> User:
        """Validate name and password policy, hash with argon2id, store. Conflict if taken."""
        if not USERNAME_PATTERN.fullmatch(username):
            raise BadRequest("username must be 1-64 characters of letters, digits and ._@-")
        username = canonical_username(username)
        bad_roles = [r for r in roles if not ROLE_PATTERN.fullmatch(r)]
        if bad_roles:
            raise BadRequest("roles must be 1-64 characters of letters, digits and :._-")
        self.ctx.passwords.check_policy(password, username=username)
        if await self.ctx.store.get_user_by_name(username) is not None:
            raise Conflict(f"username {username!r} is taken")
        now = self.ctx.clock()
        user = User(
            id=uuid.uuid4().hex,
            username=username,
            password_hash=await self.ctx.passwords.ahash(password),
            roles=tuple(dict.fromkeys(roles)),
            created_at=now,
            password_changed_at=now,
        )
        await self.ctx.store.add_user(user)  # raises Conflict if a concurrent create won
        await self.ctx.audit.emit(
            "user.created", user_id=user.id, username=username, roles=list(user.roles)
        )
        return user

    # -- sign in ------------------------------------------------------------------------
    async def sign_in(
        self, username: str, password: str, *, client_id: str, scope: str, request: RequestInfo
    ) -> TokenPair:
        """Authenticate and start a session. The ``login.succeeded`` audit row (with the
        new session's id) is written in the session's own transaction: one commit."""
        user, rehashed = await self.authenticate(username, password, request=request)

        def succeeded(family: Family) -> AuditEvent:
            return self.ctx.audit.event(
                "login.succeeded",
                user_id=user.id,
                username=user.username,
                request=request,
                session_id=family.id,
                rehashed=rehashed,
            )

        pair = await Sessions(self.ctx).start(
            user, client_id=client_id, scope=scope, request=request, audit=succeeded
        )
        self.ctx.metrics.logins.labels(result="succeeded").inc()
        return pair

    async def authenticate(
        self, username: str, password: str, *, request: RequestInfo
    ) -> tuple[User, bool]:
        """Rate limits, lockout, dummy verify for unknown users, rehash: the user and
        whether the hash was renewed. AuthenticationFailed (audited) on any failure; the
        success is for the caller to record (:meth:`sign_in`)."""
        self._rate_limit(username, request)
        found = None
        if USERNAME_PATTERN.fullmatch(username):
            found = await self.ctx.store.get_user_by_name(canonical_username(username))
        if found is None:
            await self._unknown_user(username[:64], password, request)
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        user: User = found
        await self._refuse_if_locked(user, request)
        if not await self.ctx.passwords.averify(user.password_hash, password):
            await self._record_failure(user, request)
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        if user.disabled:  # only after the password verified: same work, same answer
            await self._failed(user.id, user.username, request, "disabled")
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        return await self._succeeded(user, password)

    def _rate_limit(self, username: str, request: RequestInfo) -> None:
        try:
            self.ctx.limiter.hit("login:ip", request.ip or "-")
            self.ctx.limiter.hit("login:account", username[:64].lower())
        except RateLimited:
            self.ctx.metrics.logins.labels(result="rate_limited").inc()
            raise

    async def _unknown_user(self, name: str, password: str, request: RequestInfo) -> None:
        """Same work and same answers as a real account: dummy verify, then the lockout."""
        now, phantoms = self.ctx.clock(), self.ctx.phantoms
        until = await phantoms.locked_until(name.lower(), now)
        if until is not None:
            await self._failed(None, name, request, "locked")
            raise RateLimited("too many requests", retry_after=until - now)
        await self.ctx.passwords.adummy_verify(password)
        await phantoms.record_failure(name.lower(), now, self._lock_policy())
        await self._failed(None, name, request, "unknown_user")

    def _lock_policy(self) -> LockPolicy:
        s = self.ctx.settings
        return LockPolicy(s.lockout_threshold, s.lockout_base_seconds, s.lockout_max_seconds)

    async def _refuse_if_locked(self, user: User, request: RequestInfo) -> None:
        """While locked even the right password is refused: 429 with Retry-After."""
        now = self.ctx.clock()
        if user.locked_until is None or now >= user.locked_until:
            return
        await self._failed(user.id, user.username, request, "locked")
        raise RateLimited("too many requests", retry_after=user.locked_until - now)

    async def _record_failure(self, user: User, request: RequestInfo) -> None:
        """Progressive lockout: base * 2**(n - threshold) seconds from the threshold on, capped."""
        now, policy = self.ctx.clock(), self._lock_policy()
        failures, locked_until = await self.ctx.store.record_login_failure(
            user.id, lambda n: lock_until(n, now, policy)
        )
        await self._failed(user.id, user.username, request, "bad_password", failures=failures)
        if locked_until is not None and locked_until > now:  # this failure locked it
            self.ctx.metrics.logins.labels(result="locked").inc()
            await self.ctx.audit.emit(
                "login.locked",
                user_id=user.id,
                username=user.username,
                request=request,
                failures=failures,
                locked_seconds=round(locked_until - now, 3),
            )

    async def _failed(
        self,
        user_id: str | None,
        username: str,
        request: RequestInfo,
        reason: str,
        **data: Any,
    ) -> None:
        self.ctx.metrics.logins.labels(result="failed").inc()
        await self.ctx.audit.emit(
            "login.failed",
            user_id=user_id,
            username=username,
            request=request,
            reason=reason,
            **data,
        )

    async def _succeeded(self, user: User, password: str) -> tuple[User, bool]:
        """Reset the lockout counter; rehash when the argon2 parameters changed."""
        changes: dict[str, object] = {}
        if user.failed_logins or user.locked_until is not None:
            changes.update(failed_logins=0, locked_until=None)
        if self.ctx.passwords.needs_rehash(user.password_hash):
            changes["password_hash"] = await self.ctx.passwords.ahash(password)
        if changes:
            user = await self.ctx.store.update_user(user.id, **changes) or user
        return user, "password_hash" in changes

    # -- password, disable, unlock ------------------------------------------------------
    async def change_password(
        self,
        user_id: str,
        current: str,
        new: str,
        *,
        request: RequestInfo,
        keep_session: str | None,
    ) -> User:
        """Verify, set, and end every other session; every access token of the user dies."""
        user = await self._get(user_id)
        self.ctx.limiter.hit("login:account", user.username.lower())
        if not await self.ctx.passwords.averify(user.password_hash, current):
            await self._failed(user.id, user.username, request, "bad_current_password")
            raise AuthenticationFailed("the current password is wrong")
        if new == current:
            raise BadRequest("the new password must differ from the current one")
        self.ctx.passwords.check_policy(new, username=user.username)
        password_hash = await self.ctx.passwords.ahash(new)
        user = (
            await self.ctx.store.update_user(
                user.id, password_hash=password_hash, password_changed_at=self.ctx.clock()
            )
            or user
        )
        ended = await self._end_everything(user.id, "password_changed", request, keep_session)
        await self.ctx.audit.emit(
            "password.changed",
            user_id=user.id,
            username=user.username,
            request=request,
            session_id=keep_session,
            sessions_ended=ended,
        )
        return user

    async def set_disabled(self, user_id: str, disabled: bool, *, request: RequestInfo) -> User:
        """Disabling ends every session and revokes every access token of the user."""
        user = await self.ctx.store.update_user(user_id, disabled=disabled)
        if user is None:
            raise NotFound("no such user")
        ended = await self._end_everything(user.id, "disabled", request) if disabled else 0
        await self.ctx.audit.emit(
            "user.disabled" if disabled else "user.enabled",
            user_id=user.id,
            username=user.username,
            request=request,
            sessions_ended=ended,
        )
        return user

    async def unlock(self, user_id: str, *, request: RequestInfo) -> User:
        user = await self.ctx.store.update_user(user_id, failed_logins=0, locked_until=None)
        if user is None:
            raise NotFound("no such user")
        await self.ctx.audit.emit(
            "user.unlocked", user_id=user.id, username=user.username, request=request
        )
        return user

    async def _end_everything(
        self, user_id: str, reason: str, request: RequestInfo, keep: str | None = None
    ) -> int:
        """Bump the token version (access tokens die) and end the sessions but ``keep``."""
        await Revocations(self.ctx).revoke_user_tokens(user_id)
        return await Sessions(self.ctx).end_all(user_id, reason=reason, request=request, keep=keep)

    async def _get(self, user_id: str) -> User:
        user = await self.ctx.store.get_user(user_id)
        if user is None or user.disabled:
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        return user
