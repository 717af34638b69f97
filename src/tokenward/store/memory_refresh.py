"""The in-memory Store's refresh families and tokens (SECURITY.md "Refresh tokens"): the
same contract as sql_refresh, on dicts. A mixin of :class:`~tokenward.store.memory.MemoryStore`,
which owns the state; every multi-step method holds the store's lock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tokenward.errors import Conflict
from tokenward.store.base import (
    AuditEvent,
    Family,
    RefreshSession,
    RefreshState,
    RefreshToken,
    RotateOutcome,
    RotateResult,
    User,
)
from tokenward.store.changes import check_first_token

__all__ = ["MemoryRefresh", "json_copy"]


def json_copy(data: dict[str, Any]) -> dict[str, Any]:
    """What a SQL backend gives back: a JSON round trip (non-JSON data fails here too)."""
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


class MemoryRefresh:
    _lock: asyncio.Lock
    _users: dict[str, User]
    _families: dict[str, Family]
    _tokens: dict[str, RefreshToken]
    _members: dict[str, list[str]]
    _audit: list[AuditEvent]

    async def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def _check_audit(self, event: AuditEvent) -> None:
        if any(e.id == event.id for e in self._audit):
            raise Conflict("audit event already exists")

    def _keep_audit(self, event: AuditEvent | None) -> None:
        if event is not None:  # a copy: the caller's event data may change later
            self._audit.append(replace(event, data=json_copy(event.data)))

    async def start_family(
        self, family: Family, first: RefreshToken, *, audit: AuditEvent | None = None
    ) -> None:
        check_first_token(family, first)
        async with self._lock:
            if family.id in self._families or first.token_hash in self._tokens:
                raise Conflict("family or token already exists")
            if audit is not None:
                self._check_audit(audit)
            self._families[family.id] = family
            self._members[family.id] = []
            self._insert(first)
            self._keep_audit(audit)

    async def get_family(self, family_id: str) -> Family | None:
        return self._families.get(family_id)

    async def list_families(self, user_id: str, *, active_only: bool = True) -> Sequence[Family]:
        found = [
            f
            for f in self._families.values()
            if f.user_id == user_id and (f.active or not active_only)
        ]
        found.sort(key=lambda f: f.id)
        found.sort(key=lambda f: f.created_at, reverse=True)  # newest session first
        return found

    async def get_refresh(self, token_hash: str) -> RefreshToken | None:
        return self._tokens.get(token_hash)

    async def get_refresh_session(self, token_hash: str) -> RefreshSession | None:
        token = self._tokens.get(token_hash)
        if token is None:
            return None
        return RefreshSession(
            token, await self.get_family(token.family_id), await self.get_user(token.user_id)
        )

    async def rotate_refresh(
        self,
        token_hash: str,
        child: RefreshToken,
        now: float,
        idle_expires_at: float,
        *,
        audit: AuditEvent | None = None,
    ) -> RotateResult:
        async with self._lock:
            token = self._tokens.get(token_hash)
            if token is None:
                return RotateResult(RotateOutcome.UNKNOWN)
            if token.state is not RefreshState.ACTIVE:
                return RotateResult(RotateOutcome.REUSED, token)
            self._check_new(child)
            if audit is not None:
                self._check_audit(audit)
            self._tokens[token_hash] = replace(token, state=RefreshState.USED, used_at=now)
            self._insert(child)
            self._touch(token.family_id, now, idle_expires_at)
            self._keep_audit(audit)
            return RotateResult(RotateOutcome.ROTATED, token)

    async def regrant_refresh(
        self, parent_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RefreshToken | None:
        async with self._lock:
            parent = self._tokens.get(parent_hash)
            children = [] if parent is None else self._children(parent)
            if parent is None or len(children) != 1 or children[0].state is not RefreshState.ACTIVE:
                return None
            self._check_new(child)
            sibling = children[0]
            self._tokens[sibling.token_hash] = replace(sibling, state=RefreshState.REVOKED)
            self._insert(child)
            self._touch(parent.family_id, now, idle_expires_at)
            return sibling

    async def revoke_family(
        self, family_id: str, reason: str, now: float
    ) -> Sequence[tuple[str, float]]:
        async with self._lock:
            return self._revoke(family_id, reason, now)

    async def revoke_user_families(
        self, user_id: str, reason: str, now: float, *, keep: str | None = None
    ) -> Sequence[tuple[str, float]]:
        async with self._lock:
            doomed = [
                f.id
                for f in self._families.values()
                if f.user_id == user_id and f.active and f.id != keep
            ]
            return [pair for fid in doomed for pair in self._revoke(fid, reason, now)]

    def _children(self, parent: RefreshToken) -> list[RefreshToken]:
        members = (self._tokens[h] for h in self._members[parent.family_id])
        return [t for t in members if t.parent_hash == parent.token_hash]

    def _check_new(self, token: RefreshToken) -> None:
        # checked before any change, so a failed insert leaves nothing half-done
        if token.token_hash in self._tokens or token.family_id not in self._families:
            raise Conflict("token already exists or its family does not")

    def _insert(self, token: RefreshToken) -> None:
        self._check_new(token)
        self._tokens[token.token_hash] = token
        self._members[token.family_id].append(token.token_hash)

    def _touch(self, family_id: str, now: float, idle_expires_at: float) -> None:
        family = self._families[family_id]
        self._families[family_id] = replace(
            family, last_used_at=now, idle_expires_at=idle_expires_at
        )

    def _revoke(self, family_id: str, reason: str, now: float) -> list[tuple[str, float]]:
        family = self._families.get(family_id)
        if family is None:
            return []
        if family.active:  # the first revocation's time and reason are the ones kept
            self._families[family_id] = replace(family, revoked_at=now, revoke_reason=reason)
        denied: list[tuple[str, float]] = []
        for token_hash in self._members[family_id]:
            token = self._tokens[token_hash]
            if token.state is RefreshState.ACTIVE:
                self._tokens[token_hash] = replace(token, state=RefreshState.REVOKED)
            if token.access_jti:
                denied.append((token.access_jti, token.access_exp))
        return denied
