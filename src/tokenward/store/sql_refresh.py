"""Refresh families and tokens on SQL (SECURITY.md "Refresh tokens").

Each function runs inside one transaction its runner opened (``SQLStore._write``), so
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

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tokenward.store.base import (
    Family,
    RefreshSession,
    RefreshState,
    RefreshToken,
    RotateOutcome,
    RotateResult,
)
from tokenward.store.sql_accounts import insert_audit, row_of, user_record
from tokenward.store.sql_prepared import Prepared
from tokenward.store.tables import families, refresh_tokens, users

__all__ = [
    "get_family",
    "get_refresh",
    "get_session",
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

# The refresh path's statements, built once and run through Prepared (sql_prepared.py):
# building, cache-keying and executing a statement through Connection.execute costs
# several times its execution on SQLite (docs/benchmarks.md, refresh profile).
_GET_TOKEN = Prepared(sa.select(refresh_tokens).where(_T.token_hash == sa.bindparam("h")))
_GET_SESSION = Prepared(
    sa.select(refresh_tokens, families, users)
    .select_from(refresh_tokens)
    .outerjoin(families, _F.id == _T.family_id)  # outer: the family or user may be gone
    .outerjoin(users, users.c.id == _T.user_id)
    .where(_T.token_hash == sa.bindparam("h"))
)
_MARK_USED = Prepared(
    sa.update(refresh_tokens)
    .where(_T.token_hash == sa.bindparam("h"), _T.state == ACTIVE)
    .values(state=RefreshState.USED.value, used_at=sa.bindparam("now"))
)
_TOUCH = Prepared(
    sa.update(families)
    .where(_F.id == sa.bindparam("fid"))
    .values(last_used_at=sa.bindparam("now"), idle_expires_at=sa.bindparam("idle"))
)
_LOCK_FAMILY = sa.select(_F.id).where(_F.id == sa.bindparam("fid")).with_for_update()
_INSERT_TOKEN = Prepared(sa.insert(refresh_tokens), keys=refresh_tokens.c.keys())
_INSERT_FAMILY = Prepared(sa.insert(families), keys=families.c.keys())
_COLUMNS = {t.name: tuple(t.c.keys()) for t in (refresh_tokens, families, users)}

# Whether the engine takes row locks (FOR UPDATE). SQLite's writers never overlap, and it
# would only skip the clause after paying for the statement.
ROW_LOCKS = {"postgresql": True, "sqlite": False}


def _token_row(token: RefreshToken) -> dict[str, Any]:
    row = row_of(token)
    row["state"] = token.state.value
    return row


def _token(row: sa.Row[Any] | Mapping[str, Any]) -> RefreshToken:
    values = dict(row._mapping if isinstance(row, sa.Row) else row)
    values["state"] = RefreshState(values["state"])
    return RefreshToken(**values)


def _family(row: sa.Row[Any]) -> Family:
    return Family(**row._mapping)


def start_family(
    conn: sa.Connection,
    family: Family,
    first: RefreshToken,
    *,
    audit: dict[str, Any] | None = None,
) -> None:
    _INSERT_FAMILY.rowcount(conn, row_of(family))
    _INSERT_TOKEN.rowcount(conn, _token_row(first))
    if audit is not None:
        insert_audit(conn, audit)


def get_family(conn: sa.Connection, family_id: str) -> Family | None:
    row = (conn.execute(sa.select(families).where(_F.id == family_id))).first()
    return None if row is None else _family(row)


def list_families(conn: sa.Connection, user_id: str, *, active_only: bool) -> Sequence[Family]:
    query = sa.select(families).where(_F.user_id == user_id)
    if active_only:
        query = query.where(_F.revoked_at.is_(None))
    # newest session first; id breaks ties so every backend lists the same order
    rows = conn.execute(query.order_by(_F.created_at.desc(), _F.id))
    return [_family(r) for r in rows]


def get_refresh(conn: sa.Connection, token_hash: str) -> RefreshToken | None:
    row = _GET_TOKEN.first(conn, {"h": token_hash})
    return None if row is None else _token(_columns(refresh_tokens, row))


def get_session(conn: sa.Connection, token_hash: str) -> RefreshSession | None:
    # one statement: the token, its family and its user
    row = _GET_SESSION.first(conn, {"h": token_hash})
    if row is None:
        return None
    # the columns come in table order; ids are the first column of each (None: no row)
    n_token, n_family = len(refresh_tokens.c), len(families.c)
    token = _token(_columns(refresh_tokens, row[:n_token]))
    family_values = _columns(families, row[n_token : n_token + n_family])
    user_values = _columns(users, row[n_token + n_family :])
    family = None if family_values["id"] is None else Family(**family_values)
    user = None if user_values["id"] is None else user_record(user_values)
    return RefreshSession(token, family, user)


def _columns(table: sa.Table, values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_COLUMNS[table.name], values, strict=True))


def rotate(
    conn: sa.Connection,
    token_hash: str,
    child: RefreshToken,
    now: float,
    idle_expires_at: float,
    *,
    audit: dict[str, Any] | None = None,
) -> RotateResult:
    before = get_refresh(conn, token_hash)
    if before is None:
        return RotateResult(RotateOutcome.UNKNOWN)
    if before.state is not RefreshState.ACTIVE:
        return RotateResult(RotateOutcome.REUSED, before)
    _lock_families(conn, [before.family_id])
    if _MARK_USED.rowcount(conn, {"h": token_hash, "now": now}) != 1:
        # Lost the race after our read: report the token as the winner left it (used,
        # with its used_at), which is what reuse detection and the grace window judge.
        return RotateResult(RotateOutcome.REUSED, get_refresh(conn, token_hash))
    _INSERT_TOKEN.rowcount(conn, _token_row(child))
    _touch(conn, before.family_id, now, idle_expires_at)
    if audit is not None:
        insert_audit(conn, audit)
    return RotateResult(RotateOutcome.ROTATED, before)


def regrant(
    conn: sa.Connection,
    parent_hash: str,
    child: RefreshToken,
    now: float,
    idle_expires_at: float,
) -> RefreshToken | None:
    # Regrants of one parent queue on its family's row, so each sees what the previous
    # one did, as if run one after another: the first wins, the rest find the grace spent.
    parent = get_refresh(conn, parent_hash)
    if parent is None:
        return None
    _lock_families(conn, [parent.family_id])
    rows = conn.execute(sa.select(refresh_tokens).where(_T.parent_hash == parent_hash))
    children = [_token(r) for r in rows]
    if len(children) != 1 or children[0].state is not RefreshState.ACTIVE:
        return None
    sibling = children[0]
    # the compare-and-set on the active child, as in rotate
    replaced = conn.execute(
        sa.update(refresh_tokens)
        .where(_T.token_hash == sibling.token_hash, _T.state == ACTIVE)
        .values(state=RefreshState.REVOKED.value)
    )
    if replaced.rowcount < 1:
        return None
    conn.execute(sa.insert(refresh_tokens).values(**_token_row(child)))
    _touch(conn, parent.family_id, now, idle_expires_at)
    return sibling


def revoke_family(
    conn: sa.Connection, family_id: str, reason: str, now: float
) -> Sequence[tuple[str, float]]:
    _lock_families(conn, [family_id])
    conn.execute(
        sa.update(families)
        # the first revocation's time and reason are the ones kept
        .where(_F.id == family_id, _F.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )
    return _revoke_tokens(conn, [family_id])


def revoke_user_families(
    conn: sa.Connection, user_id: str, reason: str, now: float, keep: str | None
) -> Sequence[tuple[str, float]]:
    active = sa.select(_F.id).where(_F.user_id == user_id, _F.revoked_at.is_(None))
    if keep is not None:
        active = active.where(_F.id != keep)
    # locked in id order; after waiting for a lock, PostgreSQL re-checks revoked_at, so a
    # family revoked meanwhile drops out here rather than being reported twice
    rows = conn.execute(active.order_by(_F.id).with_for_update())
    ids = [row.id for row in rows]
    if not ids:
        return []
    conn.execute(
        sa.update(families).where(_F.id.in_(ids)).values(revoked_at=now, revoke_reason=reason)
    )
    return _revoke_tokens(conn, ids)


def _lock_families(conn: sa.Connection, family_ids: Sequence[str]) -> None:
    if not ROW_LOCKS[conn.dialect.name]:
        return
    if len(family_ids) == 1:
        conn.execute(_LOCK_FAMILY, {"fid": family_ids[0]})
        return
    query = sa.select(_F.id).where(_F.id.in_(family_ids)).order_by(_F.id).with_for_update()
    conn.execute(query)


def _revoke_tokens(conn: sa.Connection, family_ids: Sequence[str]) -> list[tuple[str, float]]:
    in_families = _T.family_id.in_(family_ids)
    conn.execute(
        sa.update(refresh_tokens)
        .where(in_families, _T.state == ACTIVE)
        .values(state=RefreshState.REVOKED.value)
    )
    rows = conn.execute(
        sa.select(_T.access_jti, _T.access_exp)
        .where(in_families, _T.access_jti != "")
        .order_by(_T.family_id, _T.generation, _T.token_hash)
    )
    return [(row.access_jti, row.access_exp) for row in rows]


def _touch(conn: sa.Connection, family_id: str, now: float, idle_expires_at: float) -> None:
    _TOUCH.rowcount(conn, {"fid": family_id, "now": now, "idle": idle_expires_at})
