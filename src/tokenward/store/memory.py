"""The in-memory Store: for tests, the dev profile and single-process embedding.

Every method runs without awaiting between its reads and writes, so it is atomic with
respect to other coroutines of the loop; the multi-step ones still take the lock so
they stay atomic if a future change adds an await in the middle.
"""

from __future__ import annotations

import asyncio
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
    RefreshToken,
    RevocationEvent,
    User,
    check_event,
)
from tokenward.store.changes import later_lock, user_changes
from tokenward.store.memory_refresh import MemoryRefresh, json_copy

__all__ = ["MemoryStore"]


class MemoryStore(MemoryRefresh):
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
        self._events.append(RevocationEvent(self._last_event_id, at, kind, json_copy(data)))
        return self._last_event_id

    async def revocation_events(self, since: int, limit: int = 100) -> Sequence[RevocationEvent]:
        newer = (e for e in self._events if e.id > since)
        return [replace(e, data=json_copy(e.data)) for e in islice(newer, max(limit, 0))]

    async def revocation_cursor(self) -> int:
        return self._events[-1].id if self._events else 0

    async def purge_revocation_events(self, before: float) -> int:
        # the newest event stays, so the cursor a reader sees never goes back
        keep = [e for e in self._events[:-1] if e.at >= before] + self._events[-1:]
        purged, self._events = len(self._events) - len(keep), keep
        return purged

    async def load_keyring_doc(self) -> KeyringDoc | None:
        saved = self._keyring
        return None if saved is None else KeyringDoc(json_copy(saved.doc), saved.version)

    async def save_keyring_doc(self, doc: dict[str, Any], *, expected_version: int | None) -> int:
        current = None if self._keyring is None else self._keyring.version
        if current != expected_version:
            raise Conflict("the key ring changed since it was loaded")
        version = (current or 0) + 1
        self._keyring = KeyringDoc(json_copy(doc), version)
        return version

    # audit ---------------------------------------------------------------------------------

    async def add_audit(self, event: AuditEvent) -> None:
        async with self._lock:
            self._check_audit(event)
            self._keep_audit(event)

    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]:
        newest = sorted(reversed(self._audit), key=lambda e: e.at, reverse=True)
        found = (
            e
            for e in newest
            if (user_id is None or e.user_id == user_id) and (type is None or e.type == type)
        )
        return [replace(e, data=json_copy(e.data)) for e in islice(found, max(limit, 0))]
