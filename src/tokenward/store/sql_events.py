"""Revocation events, deny-list upkeep and shared documents on SQL.

Each function runs on a connection the caller opened (``SQLStore._write`` / ``_read``).

The cursor guarantee — a reader that has seen id N has seen every event with a smaller
id — needs ids to become visible in id order. A PostgreSQL sequence hands out ids at
insert time, not at commit: with two concurrent inserts, id 6 could commit before id 5,
and a reader polling in between would move its cursor past 5 for good. So inserts take
a table lock that conflicts only with other writers (SHARE ROW EXCLUSIVE: readers are
not blocked) and hold it to commit: ids are assigned and committed one after another.
Revocations are rare next to verifications, so the serialisation costs nothing that
matters. SQLite already has a single writer (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tokenward.errors import Conflict
from tokenward.store.base import KeyringDoc, RevocationEvent
from tokenward.store.tables import denylist, documents, kv, revocation_events

__all__ = [
    "KEYRING_DOC",
    "add_event",
    "cursor",
    "denied",
    "deny_statement",
    "epoch_statement",
    "events_since",
    "get_epoch",
    "load_doc",
    "purge_denied",
    "purge_events",
    "save_doc",
]

KEYRING_DOC = "keyring"
EPOCH_KEY = "epoch"
_E = revocation_events.c


def _pg_serialise(conn: sa.Connection) -> None:
    conn.exec_driver_sql("LOCK TABLE revocation_events IN SHARE ROW EXCLUSIVE MODE")


def _nothing(_conn: sa.Connection) -> None:
    return None


# keyed by SQLAlchemy's backend name, like sql_engine.DIALECTS
SERIALISE_EVENTS: Mapping[str, Callable[[sa.Connection], None]] = {
    "postgresql": _pg_serialise,
    "sqlite": _nothing,
}


def add_event(conn: sa.Connection, kind: str, data: dict[str, Any], at: float) -> int:
    SERIALISE_EVENTS[conn.dialect.name](conn)
    query = sa.insert(revocation_events).values(at=at, kind=kind, data=data).returning(_E.id)
    return int((conn.execute(query)).scalar_one())


def events_since(conn: sa.Connection, since: int, limit: int) -> Sequence[RevocationEvent]:
    query = sa.select(revocation_events).where(_E.id > since).order_by(_E.id).limit(max(limit, 0))
    return [
        RevocationEvent(id=int(r.id), at=r.at, kind=r.kind, data=r.data)
        for r in conn.execute(query)
    ]


def cursor(conn: sa.Connection) -> int:
    newest = (conn.execute(sa.select(sa.func.max(_E.id)))).scalar_one_or_none()
    return 0 if newest is None else int(newest)


def purge_events(conn: sa.Connection, before: float) -> int:
    # the newest event stays, so the cursor a reader sees never goes back
    newest = sa.select(sa.func.max(_E.id)).scalar_subquery()
    query = sa.delete(revocation_events).where(_E.at < before, _E.id < newest)
    return int((conn.execute(query)).rowcount)


def purge_denied(conn: sa.Connection, now: float) -> int:
    query = sa.delete(denylist).where(denylist.c.expires_at <= now)
    return int((conn.execute(query)).rowcount)


def load_doc(conn: sa.Connection, name: str) -> KeyringDoc | None:
    query = sa.select(documents).where(documents.c.name == name)
    row = (conn.execute(query)).first()
    return None if row is None else KeyringDoc(json.loads(row.body), int(row.version))


def save_doc(conn: sa.Connection, name: str, doc: dict[str, Any], expected: int | None) -> int:
    """Compare-and-set: insert when ``expected`` is None, else update that version only."""
    body = json.dumps(doc, separators=(",", ":"))
    if expected is None:  # a second creator hits the primary key: Conflict in _write
        conn.execute(sa.insert(documents).values(name=name, version=1, body=body))
        return 1
    c = documents.c
    query = (
        sa.update(documents)
        .where(c.name == name, c.version == expected)
        .values(version=c.version + 1, body=body)
        .returning(c.version)
    )
    version = (conn.execute(query)).scalar_one_or_none()
    if version is None:
        raise Conflict("the document changed since it was loaded")
    return int(version)


def deny_statement(insert: Callable[[sa.Table], Any], jti: str, expires_at: float) -> Any:
    """Upsert of a deny-list entry: a later expiry wins, so the jti stays denied as long as
    any copy of its token can be valid. ``insert`` is the dialect's (ON CONFLICT)."""
    stmt = insert(denylist).values(jti=jti, expires_at=expires_at)
    return stmt.on_conflict_do_update(
        index_elements=[denylist.c.jti],
        set_={"expires_at": stmt.excluded.expires_at},
        where=denylist.c.expires_at < stmt.excluded.expires_at,
    )


def epoch_statement(insert: Callable[[sa.Table], Any], epoch: float) -> Any:
    # repr() of a float round-trips exactly
    stmt = insert(kv).values(key=EPOCH_KEY, value=repr(float(epoch)))
    return stmt.on_conflict_do_update(
        index_elements=[kv.c.key], set_={"value": stmt.excluded.value}
    )


def get_epoch(conn: sa.Connection) -> float:
    query = sa.select(kv.c.value).where(kv.c.key == EPOCH_KEY)
    value = conn.execute(query).scalar_one_or_none()
    return 0.0 if value is None else float(value)


def denied(conn: sa.Connection, now: float) -> list[tuple[str, float]]:
    query = sa.select(denylist).where(denylist.c.expires_at > now).order_by(denylist.c.jti)
    return [(row.jti, row.expires_at) for row in conn.execute(query)]
