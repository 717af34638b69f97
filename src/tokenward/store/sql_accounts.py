"""Accounts, clients and the audit log on SQL: rows <-> records, and the statements that
are more than one line. Each function runs on a connection its runner opened."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tokenward.store.base import AuditEvent, Client, User
from tokenward.store.changes import later_lock
from tokenward.store.tables import audit_events, users

__all__ = [
    "audit_row",
    "client",
    "list_audit",
    "record_failure",
    "select_user",
    "user",
    "user_record",
    "user_row",
]

_U = users.c


def user_row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if k == "roles" else v for k, v in values.items()}


def user_record(values: Mapping[str, Any]) -> User:
    return User(**{**values, "roles": tuple(values["roles"])})


def user(row: sa.Row[Any]) -> User:
    return user_record(dict(row._mapping))


def client(row: sa.Row[Any]) -> Client:
    values = dict(row._mapping)
    return Client(
        **{**values, "scopes": tuple(values["scopes"]), "grant_types": tuple(values["grant_types"])}
    )


def row_of(record: Any) -> dict[str, Any]:
    """A store record's fields as a row: shallow, where ``dataclasses.asdict`` deep-copies
    every value (a visible share of a refresh in py-spy, for values only read)."""
    return dict(vars(record))


def audit_row(event: AuditEvent) -> dict[str, Any]:
    return row_of(event)


def _audit(row: sa.Row[Any]) -> AuditEvent:
    values = dict(row._mapping)
    del values["seq"]
    return AuditEvent(**values)


def select_user(where: sa.ColumnElement[bool], conn: sa.Connection) -> User | None:
    row = conn.execute(sa.select(users).where(where)).first()
    return None if row is None else user(row)


_COUNT_FAILURE = (
    sa.update(users)
    .where(_U.id == sa.bindparam("uid"))
    .values(failed_logins=_U.failed_logins + 1)  # in the database: concurrent guesses all count
    .returning(_U.failed_logins, _U.locked_until)
)


def record_failure(
    conn: sa.Connection, user_id: str, lock_for: Callable[[int], float | None]
) -> tuple[int, float | None] | None:
    row = conn.execute(_COUNT_FAILURE, {"uid": user_id}).first()
    if row is None:
        return None
    failures = int(row.failed_logins)
    locked_until = later_lock(row.locked_until, lock_for(failures))
    if locked_until != row.locked_until:
        conn.execute(sa.update(users).where(_U.id == user_id).values(locked_until=locked_until))
    return failures, locked_until


def list_audit(
    conn: sa.Connection, limit: int, user_id: str | None, type: str | None
) -> Sequence[AuditEvent]:
    c = audit_events.c
    # newest first; seq breaks ties between events of the same instant
    query = sa.select(audit_events).order_by(c.at.desc(), c.seq.desc()).limit(max(limit, 0))
    if user_id is not None:
        query = query.where(c.user_id == user_id)
    if type is not None:
        query = query.where(c.type == type)
    return [_audit(r) for r in conn.execute(query)]
