"""The in-memory Store: for tests, the dev profile and single-process embedding.

Every method runs without awaiting between its reads and writes, so it is atomic with
respect to other coroutines of the loop; the multi-step ones still take the lock so
they stay atomic if a future change adds an await in the middle.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

from tokenward.errors import Conflict, NotFound
from tokenward.store.base import (
    AuditEvent,
    Client,
    Family,
    KeyringDoc,
    RefreshSession,
    RefreshState,
    RefreshToken,
    RevocationEvent,
    RotateOutcome,
    RotateResult,
    User,
    check_event,
)
from tokenward.store.changes import check_first_token, later_lock, user_changes

__all__ = ["MemoryStore"]


def _json_copy(data: dict[str, Any]) -> dict[str, Any]:
    """What a SQL backend gives back: a JSON round trip (non-JSON data fails here too)."""
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


class MemoryStore:
    """Durable only for the life of the process."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._closed = False
        self._users: dict[str, User] = {}
        self._clients: dict[str, Client] = {}
        self._families: dict[str, Family] = {}
        self._tokens: dict[str, RefreshToken] = {}
        self._members: dict[str, list[str]] = {}  # family id -> token hashes, oldest first
        self._denied: dict[str, float] = {}
        self._epoch = 0.0
        self._audit: list[AuditEvent] = []  # insertion order = the tie-break for equal times
        self._events: list[RevocationEvent] = []  # ids ascending
        self._last_event_id = 0
        self._keyring: KeyringDoc | None = None

    def __repr__(self) -> str:
        return f"MemoryStore(users={len(self._users)}, families={len(self._families)})"

    # lifecycle -----------------------------------------------------------------------------

    async def migrate(self) -> None:
        return None  # nothing to build

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True

    # users ---------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        async with self._lock:
            if user.id in self._users or self._user_named(user.username) is not None:
                raise Conflict("user already exists")
            self._users[user.id] = replace(user, roles=tuple(user.roles))

    async def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def get_user_by_name(self, username: str) -> User | None:
        return self._user_named(username)

    async def list_users(self) -> Sequence[User]:
        return sorted(self._users.values(), key=lambda u: u.username)

    async def update_user(self, user_id: str, **changes: Any) -> User | None:
        values = user_changes(changes)
        async with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return None
            other = self._user_named(values.get("username", user.username))
            if other is not None and other.id != user_id:
                raise Conflict("user already exists")
            self._users[user_id] = updated = replace(user, **values)
            return updated

    async def bump_token_version(self, user_id: str) -> int:
        async with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            self._users[user_id] = replace(user, token_version=user.token_version + 1)
            return user.token_version + 1

    async def record_login_failure(
        self, user_id: str, lock_for: Callable[[int], float | None]
    ) -> tuple[int, float | None]:
        async with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            failures = user.failed_logins + 1
            locked_until = later_lock(user.locked_until, lock_for(failures))
            self._users[user_id] = replace(user, failed_logins=failures, locked_until=locked_until)
            return failures, locked_until

    def _user_named(self, username: str) -> User | None:
        return next((u for u in self._users.values() if u.username == username), None)

    # clients -------------------------------------------------------------------------------

    async def add_client(self, client: Client) -> None:
        async with self._lock:
            if client.client_id in self._clients:
                raise Conflict("client already exists")
            self._clients[client.client_id] = client

    async def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def list_clients(self) -> Sequence[Client]:
        return sorted(self._clients.values(), key=lambda c: c.client_id)

    # refresh families ----------------------------------------------------------------------

    async def start_family(self, family: Family, first: RefreshToken) -> None:
        check_first_token(family, first)
        async with self._lock:
            if family.id in self._families or first.token_hash in self._tokens:
                raise Conflict("family or token already exists")
            self._families[family.id] = family
            self._members[family.id] = []
            self._insert(first)

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
            if audit is not None:
                self._audit.append(replace(audit, data=_json_copy(audit.data)))
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

    # deny-list and global epoch ------------------------------------------------------------

    async def deny_jti(self, jti: str, expires_at: float) -> None:
        # a later expiry wins: the jti must stay denied as long as any copy can be valid
        self._denied[jti] = max(expires_at, self._denied.get(jti, expires_at))

    async def denied(self, now: float) -> Sequence[tuple[str, float]]:
        return sorted((j, exp) for j, exp in self._denied.items() if exp > now)

    async def purge_denied(self, now: float) -> int:
        dead = [jti for jti, exp in self._denied.items() if exp <= now]
        for jti in dead:
            del self._denied[jti]
        return len(dead)

    async def get_epoch(self) -> float:
        return self._epoch

    async def set_epoch(self, epoch: float) -> None:
        self._epoch = float(epoch)

    # revocation events and the shared key ring ----------------------------------------------

    async def add_revocation_event(self, kind: str, data: dict[str, Any], at: float) -> int:
        check_event(kind, data)
        self._last_event_id += 1  # never reused, even after a purge
        self._events.append(RevocationEvent(self._last_event_id, at, kind, _json_copy(data)))
        return self._last_event_id

    async def revocation_events(self, since: int, limit: int = 100) -> Sequence[RevocationEvent]:
        newer = (e for e in self._events if e.id > since)
        return [replace(e, data=_json_copy(e.data)) for e in islice(newer, max(limit, 0))]

    async def revocation_cursor(self) -> int:
        return self._events[-1].id if self._events else 0

    async def purge_revocation_events(self, before: float) -> int:
        # the newest event stays, so the cursor a reader sees never goes back
        keep = [e for e in self._events[:-1] if e.at >= before] + self._events[-1:]
        purged, self._events = len(self._events) - len(keep), keep
        return purged

    async def load_keyring_doc(self) -> KeyringDoc | None:
        saved = self._keyring
        return None if saved is None else KeyringDoc(_json_copy(saved.doc), saved.version)

    async def save_keyring_doc(self, doc: dict[str, Any], *, expected_version: int | None) -> int:
        current = None if self._keyring is None else self._keyring.version
        if current != expected_version:
            raise Conflict("the key ring changed since it was loaded")
        version = (current or 0) + 1
        self._keyring = KeyringDoc(_json_copy(doc), version)
        return version

    # audit ---------------------------------------------------------------------------------

    async def add_audit(self, event: AuditEvent) -> None:
        async with self._lock:
            self._check_audit(event)
            self._audit.append(replace(event, data=_json_copy(event.data)))

    def _check_audit(self, event: AuditEvent) -> None:
        if any(e.id == event.id for e in self._audit):
            raise Conflict("audit event already exists")

    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]:
        newest = sorted(reversed(self._audit), key=lambda e: e.at, reverse=True)
        found = (
            e
            for e in newest
            if (user_id is None or e.user_id == user_id) and (type is None or e.type == type)
        )
        return [replace(e, data=_json_copy(e.data)) for e in islice(found, max(limit, 0))]
