"""Record builders for the store contract tests."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from tokenward.store.base import AuditEvent, Client, Family, RefreshState, RefreshToken, User

T0 = 1_700_000_000.123456  # a fraction, so float round trips are exercised
DAY = 86_400.0


def h(name: str) -> str:
    """A token hash as the services store it: SHA-256 hex."""
    return hashlib.sha256(name.encode()).hexdigest()


def user(n: int | str = 1, **changes: Any) -> User:
    made = User(
        id=f"u{n}",
        username=f"user{n}",
        password_hash=f"$argon2id$v=19$m=65536,t=3,p=4$salt{n}$hash{n}",
        created_at=T0,
        password_changed_at=T0,
    )
    return replace(made, **changes)


def client(client_id: str = "app", **changes: Any) -> Client:
    made = Client(
        client_id=client_id,
        name=f"The {client_id}",
        secret_hash="$argon2id$v=19$secret",
        scopes=("openid", "profile"),
        grant_types=("authorization_code", "refresh_token"),
        created_at=T0,
    )
    return replace(made, **changes)


def family(fid: str = "f1", user_id: str = "u1", at: float = T0, **changes: Any) -> Family:
    made = Family(
        id=fid,
        user_id=user_id,
        client_id="app",
        scope="openid profile",
        created_at=at,
        last_used_at=at,
        expires_at=at + 30 * DAY,
        idle_expires_at=at + DAY,
        user_agent="Mozilla/5.0",
        ip="203.0.113.7",
    )
    return replace(made, **changes)


def first_token(fam: Family, name: str = "r0", *, jti: str | None = None) -> RefreshToken:
    return RefreshToken(
        token_hash=h(name),
        family_id=fam.id,
        generation=0,
        parent_hash=None,
        client_id=fam.client_id,
        user_id=fam.user_id,
        scope=fam.scope,
        created_at=fam.created_at,
        expires_at=fam.created_at + DAY,
        access_jti=f"jti-{name}" if jti is None else jti,
        access_exp=fam.created_at + 900,
    )


def child(parent: RefreshToken, name: str, at: float, *, jti: str | None = None) -> RefreshToken:
    return replace(
        parent,
        token_hash=h(name),
        generation=parent.generation + 1,
        parent_hash=parent.token_hash,
        created_at=at,
        expires_at=at + DAY,
        state=RefreshState.ACTIVE,
        used_at=None,
        access_jti=f"jti-{name}" if jti is None else jti,
        access_exp=at + 900,
    )


def event(eid: str, at: float, type: str = "login", user_id: str | None = "u1") -> AuditEvent:
    return AuditEvent(
        id=eid,
        at=at,
        type=type,
        user_id=user_id,
        username=None if user_id is None else f"user-{user_id}",
        ip="203.0.113.7",
        user_agent="curl/8",
        session_id="f1",
        data={"n": eid, "nested": {"list": [1, 2.5, "x", None, True]}},
    )
