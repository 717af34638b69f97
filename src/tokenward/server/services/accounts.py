"""Accounts: create, authenticate (constant-time for unknown users), lock out, change password.

INTERFACE STUB — implemented by the login work.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.store.base import User

__all__ = ["Accounts"]


class Accounts:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def create(self, username: str, password: str, *, roles: Sequence[str] = ()) -> User:
        """Validate name and password policy, hash with argon2id, store. Conflict if taken."""
        raise NotImplementedError

    async def authenticate(self, username: str, password: str, *, request: RequestInfo) -> User:
        """Rate limits, lockout, dummy verify for unknown users, rehash. AuthenticationFailed."""
        raise NotImplementedError

    async def change_password(
        self, user_id: str, current: str, new: str, *, request: RequestInfo, keep_session: str | None
    ) -> User:
        raise NotImplementedError

    async def set_disabled(self, user_id: str, disabled: bool, *, request: RequestInfo) -> User:
        raise NotImplementedError

    async def unlock(self, user_id: str, *, request: RequestInfo) -> User:
        raise NotImplementedError
