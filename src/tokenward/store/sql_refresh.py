"""Refresh families and tokens on SQL (SECURITY.md "Refresh tokens").

Each function runs inside one transaction the caller opened (``SQLStore._write``), so
every protocol method is atomic. The compare-and-set is a conditional UPDATE checked by
its row count, which is what makes exactly one of N concurrent rotations win on every
engine: on PostgreSQL (READ COMMITTED) a second UPDATE of the same row waits for the
first to commit and then re-evaluates ``state = 'active'`` against the new row version,
matching nothing; on SQLite writers are serialised outright.

Lock order, to keep PostgreSQL free of deadlocks between a rotation and a revocation of
the same family: first the family rows (ordered by id), then their tokens. SQLite
ignores FOR UPDATE; its writers never overlap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tokenward.store.base import Family, RefreshState, RefreshToken, RotateOutcome, RotateResult
from tokenward.store.tables import families, refresh_tokens

__all__ = [
    "get_family",
    "get_refresh",
    "list_families",
    "regrant",
    "revoke_family",
    "revoke_user_families",
    "rotate",
    "start_family",
]

ACTIVE = RefreshState.ACTIVE.value
_T = refresh_tokens.c
_F = families.c


def _token_row(token: RefreshToken) -> dict[str, Any]:
    row = dataclasses.asdict(token)
    row["state"] = token.state.value
    return row


def _token(row: sa.Row[Any]) -> RefreshToken:
    values = dict(row._mapping)
    values["state"] = RefreshState(values["state"])
    return RefreshToken(**values)


def _family(row: sa.Row[Any]) -> Family:
    return Family(**row._mapping)


async def start_family(conn: AsyncConnection, family: Family, first: RefreshToken) -> None:
    await conn.execute(sa.insert(families).values(**dataclasses.asdict(family)))
    await conn.execute(sa.insert(refresh_tokens).values(**_token_row(first)))


async def get_family(conn: AsyncConnection, family_id: str) -> Family | None:
    row = (await conn.execute(sa.select(families).where(_F.id == family_id))).first()
    return None if row is None else _family(row)


async def list_families(
    conn: AsyncConnection, user_id: str, *, active_only: bool
) -> Sequence[Family]:
    query = sa.select(families).where(_F.user_id == user_id)
    if active_only:
        query = query.where(_F.revoked_at.is_(None))
    # newest session first; id breaks ties so every backend lists the same order
    rows = await conn.execute(query.order_by(_F.created_at.desc(), _F.id))
    return [_family(r) for r in rows]


async def get_refresh(conn: AsyncConnection, token_hash: str) -> RefreshToken | None:
    row = (await conn.execute(sa.select(refresh_tokens).where(_T.token_hash == token_hash))).first()
    return None if row is None else _token(row)


async def rotate(
    conn: AsyncConnection,
    token_hash: str,
    child: RefreshToken,
    now: float,
    idle_expires_at: float,
) -> RotateResult:
    before = await get_refresh(conn, token_hash)
    if before is None:
        return RotateResult(RotateOutcome.UNKNOWN)
    if before.state is not RefreshState.ACTIVE:
        return RotateResult(RotateOutcome.REUSED, before)
    await _lock_families(conn, [before.family_id])
    won = await conn.execute(
        sa.update(refresh_tokens)
        .where(_T.token_hash == token_hash, _T.state == ACTIVE)
        .values(state=RefreshState.USED.value, used_at=now)
    )
    if won.rowcount != 1:
        # Lost the race after our read: report the token as the winner left it (used,
        # with its used_at), which is what reuse detection and the grace window judge.
        return RotateResult(RotateOutcome.REUSED, await get_refresh(conn, token_hash))
    await conn.execute(sa.insert(refresh_tokens).values(**_token_row(child)))
    await _touch(conn, before.family_id, now, idle_expires_at)
    return RotateResult(RotateOutcome.ROTATED, before)


async def regrant(
    conn: AsyncConnection,
    parent_hash: str,
    child: RefreshToken,
    now: float,
    idle_expires_at: float,
) -> RefreshToken | None:
    # Regrants of one parent queue on its family's row, so each sees what the previous
    # one did, as if run one after another: the first wins, the rest find the grace spent.
    parent = await get_refresh(conn, parent_hash)
    if parent is None:
        return None
    await _lock_families(conn, [parent.family_id])
    rows = await conn.execute(sa.select(refresh_tokens).where(_T.parent_hash == parent_hash))
    children = [_token(r) for r in rows]
    if len(children) != 1 or children[0].state is not RefreshState.ACTIVE:
        return None
    sibling = children[0]
    # the compare-and-set on the active child, as in rotate
    replaced = await conn.execute(
        sa.update(refresh_tokens)
        .where(_T.token_hash == sibling.token_hash, _T.state == ACTIVE)
        .values(state=RefreshState.REVOKED.value)
    )
    if replaced.rowcount < 1:
        return None
    await conn.execute(sa.insert(refresh_tokens).values(**_token_row(child)))
    await _touch(conn, parent.family_id, now, idle_expires_at)
    return sibling


async def revoke_family(
    conn: AsyncConnection, family_id: str, reason: str, now: float
) -> Sequence[tuple[str, float]]:
    await _lock_families(conn, [family_id])
    await conn.execute(
        sa.update(families)
        # the first revocation's time and reason are the ones kept
        .where(_F.id == family_id, _F.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )
    return await _revoke_tokens(conn, [family_id])


async def revoke_user_families(
    conn: AsyncConnection, user_id: str, reason: str, now: float, keep: str | None
) -> Sequence[tuple[str, float]]:
    active = sa.select(_F.id).where(_F.user_id == user_id, _F.revoked_at.is_(None))
    if keep is not None:
        active = active.where(_F.id != keep)
    # locked in id order; after waiting for a lock, PostgreSQL re-checks revoked_at, so a
    # family revoked meanwhile drops out here rather than being reported twice
    rows = await conn.execute(active.order_by(_F.id).with_for_update())
    ids = [row.id for row in rows]
    if not ids:
        return []
    await conn.execute(
        sa.update(families).where(_F.id.in_(ids)).values(revoked_at=now, revoke_reason=reason)
    )
    return await _revoke_tokens(conn, ids)


async def _lock_families(conn: AsyncConnection, family_ids: Sequence[str]) -> None:
    query = sa.select(_F.id).where(_F.id.in_(family_ids)).order_by(_F.id).with_for_update()
    await conn.execute(query)


async def _revoke_tokens(
    conn: AsyncConnection, family_ids: Sequence[str]
) -> list[tuple[str, float]]:
    in_families = _T.family_id.in_(family_ids)
    await conn.execute(
        sa.update(refresh_tokens)
        .where(in_families, _T.state == ACTIVE)
        .values(state=RefreshState.REVOKED.value)
    )
    rows = await conn.execute(
        sa.select(_T.access_jti, _T.access_exp)
        .where(in_families, _T.access_jti != "")
        .order_by(_T.family_id, _T.generation, _T.token_hash)
    )
    return [(row.access_jti, row.access_exp) for row in rows]


async def _touch(conn: AsyncConnection, family_id: str, now: float, idle_expires_at: float) -> None:
    await conn.execute(
        sa.update(families)
        .where(_F.id == family_id)
        .values(last_used_at=now, idle_expires_at=idle_expires_at)
    )
