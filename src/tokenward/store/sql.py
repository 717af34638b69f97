"""SQLStore: the durable Store on SQLAlchemy 2 Core (async), for SQLite and PostgreSQL.

One code path for both engines; what differs (driver, SQLite pragmas and BEGIN mode,
upsert syntax, the migration lock) is in :mod:`tokenward.store.sql_engine`. Reads use
a pooled connection; writes go through :meth:`SQLStore._write`, one transaction each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from tokenward.errors import Conflict, NotFound, StoreUnavailable
from tokenward.store import sql_events, sql_refresh
from tokenward.store.base import (
    AuditEvent,
    Client,
    Family,
    KeyringDoc,
    RefreshToken,
    RevocationEvent,
    RotateResult,
    User,
    check_event,
)
from tokenward.store.changes import check_first_token, user_changes
from tokenward.store.migrations import upgrade
from tokenward.store.sql_engine import WRITE, open_engine
from tokenward.store.tables import audit_events, clients, denylist, kv, users

# A database that cannot be reached (refused, reset, timed out, pool exhausted): a 503 for
# the client, never a 500 (issue 4: recovery without restart).
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError, PoolTimeout)

__all__ = ["SQLStore"]

EPOCH_KEY = "epoch"
_U = users.c


def _user_row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if k == "roles" else v for k, v in values.items()}


def _user(row: sa.Row[Any]) -> User:
    values = dict(row._mapping)
    return User(**{**values, "roles": tuple(values["roles"])})


def _client(row: sa.Row[Any]) -> Client:
    values = dict(row._mapping)
    return Client(
        **{**values, "scopes": tuple(values["scopes"]), "grant_types": tuple(values["grant_types"])}
    )


def _audit(row: sa.Row[Any]) -> AuditEvent:
    values = dict(row._mapping)
    del values["seq"]
    return AuditEvent(**values)


class SQLStore:
    """``SQLStore("sqlite+aiosqlite:///path/tokenward.db")`` or ``SQLStore("postgresql://...")``.

    ``connect_args`` go to the driver, e.g. asyncpg's
    ``{"server_settings": {"search_path": "tokenward"}}`` to live in a schema of its own.
    Use a store on one event loop: its pooled connections (and SQLite's write lock)
    belong to the loop that first used them. The repr hides the URL's password.
    """

    def __init__(self, url: str, *, connect_args: Mapping[str, Any] | None = None) -> None:
        self._engine, self._dialect = open_engine(url, connect_args)
        self._writer = self._dialect.writer()
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def _write(self, conflict: str = "already exists") -> AsyncIterator[AsyncConnection]:
        """One write transaction; a unique or foreign-key violation becomes Conflict."""
        try:
            async with self._writer, self._engine.connect() as conn:
                await conn.execution_options(**{WRITE: True})
                async with conn.begin():
                    yield conn
        except IntegrityError:
            raise Conflict(conflict) from None  # the driver's message may quote values
        except _UNREACHABLE:
            # The transaction rolled back (or never began): nothing half-written. 503.
            raise StoreUnavailable("the store is unreachable; try again shortly") from None

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except _UNREACHABLE:
            raise StoreUnavailable("the store is unreachable; try again shortly") from None

    # lifecycle -----------------------------------------------------------------------------

    async def migrate(self) -> None:
        """``alembic upgrade head``; a no-op when the schema is current."""
        async with self._write() as conn:
            await conn.run_sync(self._dialect.migration_lock)
            await conn.run_sync(upgrade)

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            async with self._read() as conn:
                await conn.execute(sa.select(1))
        except (SQLAlchemyError, OSError, StoreUnavailable):
            return False
        return True

    async def close(self) -> None:
        self._closed = True
        await self._engine.dispose()

    # users ---------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        async with self._write("user already exists") as conn:
            await conn.execute(sa.insert(users).values(**_user_row(dataclasses.asdict(user))))

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user(_U.id == user_id)

    async def get_user_by_name(self, username: str) -> User | None:
        return await self._one_user(_U.username == username)

    async def _one_user(self, where: sa.ColumnElement[bool]) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(users).where(where))).first()
        return None if row is None else _user(row)

    async def list_users(self) -> Sequence[User]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(users).order_by(_U.username))
            return [_user(r) for r in rows]

    async def update_user(self, user_id: str, **changes: Any) -> User | None:
        values = user_changes(changes)
        if not values:
            return await self.get_user(user_id)
        async with self._write("user already exists") as conn:
            query = sa.update(users).where(_U.id == user_id).values(**_user_row(values))
            row = (await conn.execute(query.returning(users))).first()
        return None if row is None else _user(row)

    async def bump_token_version(self, user_id: str) -> int:
        # one statement: the increment happens in the database, never read-modify-write
        query = (
            sa.update(users)
            .where(_U.id == user_id)
            .values(token_version=_U.token_version + 1)
            .returning(_U.token_version)
        )
        async with self._write() as conn:
            version = (await conn.execute(query)).scalar_one_or_none()
        if version is None:
            raise NotFound("no such user")
        return int(version)

    # clients -------------------------------------------------------------------------------

    async def add_client(self, client: Client) -> None:
        row = dataclasses.asdict(client)
        row.update(scopes=list(client.scopes), grant_types=list(client.grant_types))
        async with self._write("client already exists") as conn:
            await conn.execute(sa.insert(clients).values(**row))

    async def get_client(self, client_id: str) -> Client | None:
        async with self._read() as conn:
            query = sa.select(clients).where(clients.c.client_id == client_id)
            row = (await conn.execute(query)).first()
        return None if row is None else _client(row)

    async def list_clients(self) -> Sequence[Client]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(clients).order_by(clients.c.client_id))
            return [_client(r) for r in rows]

    # refresh families (the SQL is in sql_refresh) ------------------------------------------

    async def start_family(self, family: Family, first: RefreshToken) -> None:
        check_first_token(family, first)
        async with self._write("family or token already exists") as conn:
            await sql_refresh.start_family(conn, family, first)

    async def get_family(self, family_id: str) -> Family | None:
        async with self._read() as conn:
            return await sql_refresh.get_family(conn, family_id)

    async def list_families(self, user_id: str, *, active_only: bool = True) -> Sequence[Family]:
        async with self._read() as conn:
            return await sql_refresh.list_families(conn, user_id, active_only=active_only)

    async def get_refresh(self, token_hash: str) -> RefreshToken | None:
        async with self._read() as conn:
            return await sql_refresh.get_refresh(conn, token_hash)

    async def rotate_refresh(
        self, token_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RotateResult:
        async with self._write("token already exists") as conn:
            return await sql_refresh.rotate(conn, token_hash, child, now, idle_expires_at)

    async def regrant_refresh(
        self, parent_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RefreshToken | None:
        async with self._write("token already exists") as conn:
            return await sql_refresh.regrant(conn, parent_hash, child, now, idle_expires_at)

    async def revoke_family(
        self, family_id: str, reason: str, now: float
    ) -> Sequence[tuple[str, float]]:
        async with self._write() as conn:
            return await sql_refresh.revoke_family(conn, family_id, reason, now)

    async def revoke_user_families(
        self, user_id: str, reason: str, now: float, *, keep: str | None = None
    ) -> Sequence[tuple[str, float]]:
        async with self._write() as conn:
            return await sql_refresh.revoke_user_families(conn, user_id, reason, now, keep)

    # deny-list and global epoch ------------------------------------------------------------

    async def deny_jti(self, jti: str, expires_at: float) -> None:
        stmt = self._dialect.insert(denylist).values(jti=jti, expires_at=expires_at)
        # a later expiry wins: the jti must stay denied as long as any copy can be valid
        stmt = stmt.on_conflict_do_update(
            index_elements=[denylist.c.jti],
            set_={"expires_at": stmt.excluded.expires_at},
            where=denylist.c.expires_at < stmt.excluded.expires_at,
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def denied(self, now: float) -> Sequence[tuple[str, float]]:
        query = sa.select(denylist).where(denylist.c.expires_at > now).order_by(denylist.c.jti)
        async with self._read() as conn:
            return [(row.jti, row.expires_at) for row in await conn.execute(query)]

    async def get_epoch(self) -> float:
        async with self._read() as conn:
            query = sa.select(kv.c.value).where(kv.c.key == EPOCH_KEY)
            value = (await conn.execute(query)).scalar_one_or_none()
        return 0.0 if value is None else float(value)

    async def set_epoch(self, epoch: float) -> None:
        # repr() of a float round-trips exactly
        stmt = self._dialect.insert(kv).values(key=EPOCH_KEY, value=repr(float(epoch)))
        stmt = stmt.on_conflict_do_update(
            index_elements=[kv.c.key], set_={"value": stmt.excluded.value}
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def purge_denied(self, now: float) -> int:
        async with self._write() as conn:
            return await sql_events.purge_denied(conn, now)

    # revocation events and the shared key ring (the SQL is in sql_events) -------------------

    async def add_revocation_event(self, kind: str, data: dict[str, Any], at: float) -> int:
        check_event(kind, data)
        async with self._write() as conn:
            return await sql_events.add_event(conn, kind, data, at)

    async def revocation_events(self, since: int, limit: int = 100) -> Sequence[RevocationEvent]:
        async with self._read() as conn:
            return await sql_events.events_since(conn, since, limit)

    async def revocation_cursor(self) -> int:
        async with self._read() as conn:
            return await sql_events.cursor(conn)

    async def purge_revocation_events(self, before: float) -> int:
        async with self._write() as conn:
            return await sql_events.purge_events(conn, before)

    async def load_keyring_doc(self) -> KeyringDoc | None:
        async with self._read() as conn:
            return await sql_events.load_doc(conn, sql_events.KEYRING_DOC)

    async def save_keyring_doc(self, doc: dict[str, Any], *, expected_version: int | None) -> int:
        async with self._write("the key ring changed since it was loaded") as conn:
            return await sql_events.save_doc(conn, sql_events.KEYRING_DOC, doc, expected_version)

    # audit ---------------------------------------------------------------------------------

    async def add_audit(self, event: AuditEvent) -> None:
        async with self._write("audit event already exists") as conn:
            await conn.execute(sa.insert(audit_events).values(**dataclasses.asdict(event)))

    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]:
        c = audit_events.c
        query = sa.select(audit_events).order_by(c.at.desc(), c.seq.desc()).limit(max(limit, 0))
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if type is not None:
            query = query.where(c.type == type)
        async with self._read() as conn:
            return [_audit(r) for r in await conn.execute(query)]
