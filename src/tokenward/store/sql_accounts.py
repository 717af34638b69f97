"""Accounts, clients and the audit log on SQL: rows <-> records, and the statements that
are more than one line. Each function runs on a connection its runner opened."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tokenward.store.base import AuditEvent, Client, User
from tokenward.store.changes import later_lock
from tokenward.store.sql_prepared import Prepared
from tokenward.store.tables import audit_events, users

__all__ = [
    "audit_row",
    "client",
    "insert_audit",
    "list_audit",
    "record_failure",
    "row_of",
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


_INSERT_AUDIT = Prepared(
    sa.insert(audit_events), keys=[c.key for c in audit_events.c if c.key != "seq"]
)


def insert_audit(conn: sa.Connection, row: Mapping[str, Any]) -> None:
    """One audit row (``audit_row``), on its own or inside another write's transaction."""
    _INSERT_AUDIT.rowcount(conn, row)


def _audit(row: sa.Row[Any]) -> AuditEvent:
    values = dict(row._mapping)
    del values["seq"]
    return AuditEvent(**values)


# A user by id or by (canonical) name: on every login and token check, so prepared.
_USER_BY = {
    column: Prepared(sa.select(users).where(users.c[column] == sa.bindparam("v")))
    for column in ("id", "username")
}
_USER_COLUMNS = tuple(users.c.keys())


def select_user(column: str, value: str, conn: sa.Connection) -> User | None:
    """The user whose ``column`` ("id" or "username") is ``value``."""
    row = _USER_BY[column].first(conn, {"v": value})
    return None if row is None else user_record(dict(zip(_USER_COLUMNS, row, strict=True)))


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
