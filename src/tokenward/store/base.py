"""Storage protocols and records, one per aggregate; every backend implements all of them.

Times are floats (seconds since the epoch, from the injected clock); ids are opaque
strings. Secrets are stored only as hashes (refresh tokens: SHA-256; client secrets and
passwords: argon2id) and never appear in a record's repr.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "REVOCATION_KINDS",
    "AuditEvent",
    "Client",
    "Family",
    "KeyringDoc",
    "RefreshSession",
    "RefreshState",
    "RefreshToken",
    "RevocationEvent",
    "RotateOutcome",
    "RotateResult",
    "Store",
    "User",
    "check_event",
]


@dataclass(frozen=True)
class User:
    id: str
    username: str
    password_hash: str = field(repr=False)
    roles: tuple[str, ...] = ()
    disabled: bool = False
    token_version: int = 0  # the `tv` claim; bumping it revokes every token of the user
    failed_logins: int = 0
    locked_until: float | None = None
    created_at: float = 0.0
    password_changed_at: float = 0.0


@dataclass(frozen=True)
class Client:
    """An OAuth client. Confidential clients have a secret (argon2id hash)."""

    client_id: str
    name: str
    secret_hash: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("client_credentials",)
    disabled: bool = False
    created_at: float = 0.0


@dataclass(frozen=True)
class Family:
    """A refresh-token family = one login session on one device."""

    id: str
    user_id: str
    client_id: str
    scope: str
    created_at: float
    last_used_at: float
    expires_at: float  # absolute lifetime
    idle_expires_at: float  # moves forward on each refresh
    revoked_at: float | None = None
    revoke_reason: str | None = None
    user_agent: str = ""
    ip: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class RefreshState(enum.StrEnum):
    ACTIVE = "active"
    USED = "used"
    REVOKED = "revoked"


@dataclass(frozen=True)
class RefreshToken:
    """One member of a family; stored by the SHA-256 of the opaque token only."""

    token_hash: str
    family_id: str
    generation: int
    parent_hash: str | None
    client_id: str
    user_id: str
    scope: str
    created_at: float
    expires_at: float
    state: RefreshState = RefreshState.ACTIVE
    used_at: float | None = None
    access_jti: str = ""  # the access token minted together with it (denied on family revoke)
    access_exp: float = 0.0


@dataclass(frozen=True)
class RefreshSession:
    """A refresh token with its family and user, read together (one round trip on the
    refresh path); family or user is None when it no longer exists."""

    token: RefreshToken
    family: Family | None
    user: User | None


class RotateOutcome(enum.StrEnum):
    ROTATED = "rotated"  # won the compare-and-set active -> used; child inserted
    REUSED = "reused"  # the token was already used (or revoked): reuse detection applies
    UNKNOWN = "unknown"  # no such token


@dataclass(frozen=True)
class RotateResult:
    outcome: RotateOutcome
    token: RefreshToken | None = None  # the presented token as it was before the call


@dataclass(frozen=True)
class AuditEvent:
    """A security-relevant event. ``data`` must never hold secrets (a test scans it)."""

    id: str
    at: float
    type: str
    user_id: str | None = None
    username: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


# What a revocation event can say; the data of each (JSON):
#   deny           {"jti": str, "exp": float}       one access token until it expires
#   token_version  {"iss": str, "sub": str, "version": int}   tokens of (iss, sub) below it
#   epoch          {"epoch": float}                  every token issued before it
#   remove_kid     {"kid": str}                      every token signed by the key
#   keys_changed   {"version": int}                  the shared key ring changed: reload it
REVOCATION_KINDS = frozenset({"deny", "token_version", "epoch", "remove_kid", "keys_changed"})


@dataclass(frozen=True)
class RevocationEvent:
    """One entry of the revocation feed. ``id`` is the cursor: it only grows, and a reader
    that has seen id N has seen every event committed with an id below N."""

    id: int
    at: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyringDoc:
    """The key ring's sealed document (keystore.seal_keyring) and its version for the
    compare-and-set in ``save_keyring_doc``. Private keys inside are encrypted."""

    doc: dict[str, Any] = field(repr=False)
    version: int


def check_event(kind: str, data: dict[str, Any]) -> None:
    """An unknown kind is a programming error, refused before anything is written."""
    if kind not in REVOCATION_KINDS:
        raise ValueError(f"unknown revocation event kind {kind!r}")
    if not isinstance(data, dict):
        raise TypeError("revocation event data must be a dict")


@runtime_checkable
class Store(Protocol):
    """Durable state. Every method is atomic on its own."""

    # lifecycle
    async def migrate(self) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...

    # users
    async def add_user(self, user: User) -> None: ...  # raises errors.Conflict on a taken name
    async def get_user(self, user_id: str) -> User | None: ...
    async def get_user_by_name(self, username: str) -> User | None: ...
    async def list_users(self) -> Sequence[User]: ...
    async def update_user(self, user_id: str, **changes: Any) -> User | None: ...
    async def bump_token_version(self, user_id: str) -> int: ...  # atomic +1, returns new tv
    async def record_login_failure(
        self, user_id: str, lock_for: Callable[[int], float | None]
    ) -> tuple[int, float | None]: ...

    # Atomic +1 of failed_logins (concurrent wrong guesses each count; NotFound if no such
    # user); ``lock_for(failures)`` gives the lock time that count earns, stored unless an
    # existing lock lasts longer. Returns (failures, locked_until as stored).

    # clients
    async def add_client(self, client: Client) -> None: ...  # errors.Conflict if taken
    async def get_client(self, client_id: str) -> Client | None: ...
    async def list_clients(self) -> Sequence[Client]: ...

    # refresh families
    async def start_family(
        self, family: Family, first: RefreshToken, *, audit: AuditEvent | None = None
    ) -> None: ...
    # ``audit`` (the sign-in that started it) is stored in the same transaction.
    async def get_family(self, family_id: str) -> Family | None: ...
    async def list_families(
        self, user_id: str, *, active_only: bool = True
    ) -> Sequence[Family]: ...
    async def get_refresh(self, token_hash: str) -> RefreshToken | None: ...
    async def get_refresh_session(self, token_hash: str) -> RefreshSession | None: ...
    async def rotate_refresh(
        self,
        token_hash: str,
        child: RefreshToken,
        now: float,
        idle_expires_at: float,
        *,
        audit: AuditEvent | None = None,
    ) -> RotateResult: ...
    # ``audit`` is stored in the same transaction when the rotation wins (ROTATED): the
    # audit trail never misses a committed rotation, and a refresh is one transaction.
    async def regrant_refresh(
        self, parent_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RefreshToken | None: ...
    # Grace window (SECURITY.md refresh rule 3), once per parent: if the parent's only
    # child is ACTIVE, atomically revoke it and insert ``child``; returns the revoked child
    # (whose access token the caller denies). None when there is no active child, or the
    # parent already has a revoked child (its grace is spent).
    async def revoke_family(
        self, family_id: str, reason: str, now: float
    ) -> Sequence[tuple[str, float]]: ...  # returns (access_jti, access_exp) to deny
    async def revoke_user_families(
        self, user_id: str, reason: str, now: float, *, keep: str | None = None
    ) -> Sequence[tuple[str, float]]: ...

    # deny-list and global epoch
    async def deny_jti(self, jti: str, expires_at: float) -> None: ...
    async def denied(self, now: float) -> Sequence[tuple[str, float]]: ...
    async def get_epoch(self) -> float: ...
    async def set_epoch(self, epoch: float) -> None: ...
    async def purge_denied(self, now: float) -> int: ...  # drops expired entries; how many

    # revocation events: the feed other nodes and verifiers follow by cursor (the id)
    async def add_revocation_event(self, kind: str, data: dict[str, Any], at: float) -> int: ...
    async def revocation_events(
        self, since: int, limit: int = 100
    ) -> Sequence[RevocationEvent]: ...  # ids > since, oldest first
    async def revocation_cursor(self) -> int: ...  # the newest id; 0 when there is none
    async def purge_revocation_events(self, before: float) -> int: ...  # keeps the newest

    # the shared key ring: one sealed document, replaced by compare-and-set on its version
    async def load_keyring_doc(self) -> KeyringDoc | None: ...
    async def save_keyring_doc(
        self, doc: dict[str, Any], *, expected_version: int | None
    ) -> int: ...  # the new version; errors.Conflict when another save came first

    # audit
    async def add_audit(self, event: AuditEvent) -> None: ...
    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]: ...
