"""SQLStore: the durable Store on SQLAlchemy 2 Core, for SQLite and PostgreSQL.

One code path for both engines: each operation is a sync function over a connection,
run as one transaction by the engine's runner (:mod:`tokenward.store.sql_runner`: a
thread for SQLite, asyncpg for PostgreSQL). What differs (driver, SQLite pragmas and
BEGIN mode, upsert syntax, the migration lock) is in :mod:`tokenward.store.sql_engine`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tokenward.errors import Conflict, NotFound, StoreUnavailable
from tokenward.store import sql_accounts, sql_events, sql_refresh
from tokenward.store.base import (
    AuditEvent,
    Client,
    Family,
    KeyringDoc,
    RefreshSession,
    RefreshToken,
    RevocationEvent,
    RotateResult,
    User,
    check_event,
)
from tokenward.store.changes import check_first_token, user_changes
from tokenward.store.migrations import upgrade
from tokenward.store.sql_engine import open_engine
from tokenward.store.sql_runner import Work
from tokenward.store.tables import clients, users

# A database that cannot be reached (refused, reset, timed out, pool exhausted): a 503 for
# the client, never a 500 (issue 4: recovery without restart).
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError, PoolTimeout)

__all__ = ["SQLStore"]

T = TypeVar("T")

_U = users.c


class SQLStore:
    """``SQLStore("sqlite:///path/tokenward.db")`` or ``SQLStore("postgresql://...")``.

    ``connect_args`` go to the driver, e.g. asyncpg's
    ``{"server_settings": {"search_path": "tokenward"}}`` to live in a schema of its own.
    On PostgreSQL, use a store on one event loop (its pooled connections belong to the
    loop that opened them). The repr hides the URL's password.
    """

    def __init__(self, url: str, *, connect_args: Mapping[str, Any] | None = None) -> None:
        self._runner, self._dialect = open_engine(url, connect_args)
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLStore({self._runner.url.render_as_string(hide_password=True)!r})"

    async def _write(self, fn: Work[T], conflict: str = "already exists") -> T:
        """``fn`` as one write transaction; a unique or foreign-key violation is Conflict."""
        self._check_open()
        try:
            return await self._runner.write(fn)
        except IntegrityError:
            raise Conflict(conflict) from None  # the driver's message may quote values
        except _UNREACHABLE:
            # The transaction rolled back (or never began): nothing half-written. 503.
            raise StoreUnavailable("the store is unreachable; try again shortly") from None

    async def _read(self, fn: Work[T], *, point: bool = False) -> T:
        self._check_open()
        try:
            return await self._runner.read(fn, point=point)
        except _UNREACHABLE:
            raise StoreUnavailable("the store is unreachable; try again shortly") from None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the store is closed")

    # lifecycle -----------------------------------------------------------------------------

    async def migrate(self) -> None:
        """``alembic upgrade head``; a no-op when the schema is current."""

        def work(conn: sa.Connection) -> None:
            self._dialect.migration_lock(conn)
            upgrade(conn)

        await self._write(work)

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            await self._read(lambda conn: conn.execute(sa.select(1)).scalar())
        except (SQLAlchemyError, OSError, StoreUnavailable):
            return False
        return True

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._runner.dispose()

    # users ---------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        row = sql_accounts.user_row(dataclasses.asdict(user))
        await self._write(
            lambda conn: conn.execute(sa.insert(users).values(**row)), "user already exists"
        )

    async def get_user(self, user_id: str) -> User | None:
        return await self._read(partial(sql_accounts.select_user, "id", user_id), point=True)

    async def get_user_by_name(self, username: str) -> User | None:
        return await self._read(partial(sql_accounts.select_user, "username", username), point=True)

    async def list_users(self) -> Sequence[User]:
        query = sa.select(users).order_by(_U.username)
        return await self._read(lambda conn: [sql_accounts.user(r) for r in conn.execute(query)])

    async def update_user(self, user_id: str, **changes: Any) -> User | None:
        values = user_changes(changes)
        if not values:
            return await self.get_user(user_id)
        query = sa.update(users).where(_U.id == user_id).values(**sql_accounts.user_row(values))
        row = await self._write(
            lambda conn: conn.execute(query.returning(users)).first(), "user already exists"
        )
        return None if row is None else sql_accounts.user(row)

    async def bump_token_version(self, user_id: str) -> int:
        # one statement: the increment happens in the database, never read-modify-write
        query = (
            sa.update(users)
            .where(_U.id == user_id)
            .values(token_version=_U.token_version + 1)
            .returning(_U.token_version)
        )
        version = await self._write(lambda conn: conn.execute(query).scalar_one_or_none())
        if version is None:
            raise NotFound("no such user")
        return int(version)

    async def record_login_failure(
        self, user_id: str, lock_for: Callable[[int], float | None]
    ) -> tuple[int, float | None]:
        work = partial(sql_accounts.record_failure, user_id=user_id, lock_for=lock_for)
        outcome = await self._write(work)
        if outcome is None:
            raise NotFound("no such user")
        return outcome

    # clients -------------------------------------------------------------------------------

    async def add_client(self, client: Client) -> None:
        row = dataclasses.asdict(client)
        row.update(scopes=list(client.scopes), grant_types=list(client.grant_types))
        stmt = sa.insert(clients).values(**row)
        await self._write(lambda conn: conn.execute(stmt), "client already exists")

    async def get_client(self, client_id: str) -> Client | None:
        query = sa.select(clients).where(clients.c.client_id == client_id)
        row = await self._read(lambda conn: conn.execute(query).first())
        return None if row is None else sql_accounts.client(row)

    async def list_clients(self) -> Sequence[Client]:
        query = sa.select(clients).order_by(clients.c.client_id)
        return await self._read(lambda conn: [sql_accounts.client(r) for r in conn.execute(query)])

    # refresh families (the SQL is in sql_refresh) ------------------------------------------

    async def start_family(
        self, family: Family, first: RefreshToken, *, audit: AuditEvent | None = None
    ) -> None:
        check_first_token(family, first)
        row = None if audit is None else sql_accounts.audit_row(audit)
        await self._write(
            partial(sql_refresh.start_family, family=family, first=first, audit=row),
            "family, token or audit event already exists",
        )

    async def get_family(self, family_id: str) -> Family | None:
        return await self._read(partial(sql_refresh.get_family, family_id=family_id))

    async def list_families(self, user_id: str, *, active_only: bool = True) -> Sequence[Family]:
        return await self._read(
            partial(sql_refresh.list_families, user_id=user_id, active_only=active_only)
        )

    async def get_refresh(self, token_hash: str) -> RefreshToken | None:
        return await self._read(partial(sql_refresh.get_refresh, token_hash=token_hash), point=True)

    async def get_refresh_session(self, token_hash: str) -> RefreshSession | None:
        return await self._read(partial(sql_refresh.get_session, token_hash=token_hash), point=True)

    async def rotate_refresh(
        self,
        token_hash: str,
        child: RefreshToken,
        now: float,
        idle_expires_at: float,
        *,
        audit: AuditEvent | None = None,
    ) -> RotateResult:
        row = None if audit is None else sql_accounts.audit_row(audit)
        work = partial(sql_refresh.rotate, token_hash=token_hash, child=child, now=now)
        return await self._write(
            partial(work, idle_expires_at=idle_expires_at, audit=row), "token already exists"
        )

    async def regrant_refresh(
        self, parent_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RefreshToken | None:
        work = partial(sql_refresh.regrant, parent_hash=parent_hash, child=child, now=now)
        return await self._write(
            partial(work, idle_expires_at=idle_expires_at), "token already exists"
        )

    async def revoke_family(
        self, family_id: str, reason: str, now: float
    ) -> Sequence[tuple[str, float]]:
        return await self._write(
            partial(sql_refresh.revoke_family, family_id=family_id, reason=reason, now=now)
        )

    async def revoke_user_families(
        self, user_id: str, reason: str, now: float, *, keep: str | None = None
    ) -> Sequence[tuple[str, float]]:
        return await self._write(
            partial(
                sql_refresh.revoke_user_families, user_id=user_id, reason=reason, now=now, keep=keep
            )
        )

    # deny-list and global epoch ------------------------------------------------------------

    async def deny_jti(self, jti: str, expires_at: float) -> None:
        stmt = sql_events.deny_statement(self._dialect.insert, jti, expires_at)
        await self._write(lambda conn: conn.execute(stmt))

    async def denied(self, now: float) -> Sequence[tuple[str, float]]:
        return await self._read(partial(sql_events.denied, now=now))

    async def get_epoch(self) -> float:
        return await self._read(sql_events.get_epoch)

    async def set_epoch(self, epoch: float) -> None:
        stmt = sql_events.epoch_statement(self._dialect.insert, epoch)
        await self._write(lambda conn: conn.execute(stmt))

    async def purge_denied(self, now: float) -> int:
        return await self._write(partial(sql_events.purge_denied, now=now))

    # revocation events and the shared key ring (the SQL is in sql_events) -------------------

    async def add_revocation_event(self, kind: str, data: dict[str, Any], at: float) -> int:
        check_event(kind, data)
        return await self._write(partial(sql_events.add_event, kind=kind, data=data, at=at))

    async def revocation_events(self, since: int, limit: int = 100) -> Sequence[RevocationEvent]:
        return await self._read(partial(sql_events.events_since, since=since, limit=limit))

    async def revocation_cursor(self) -> int:
        return await self._read(sql_events.cursor)

    async def purge_revocation_events(self, before: float) -> int:
        return await self._write(partial(sql_events.purge_events, before=before))

    async def load_keyring_doc(self) -> KeyringDoc | None:
        return await self._read(partial(sql_events.load_doc, name=sql_events.KEYRING_DOC))

    async def save_keyring_doc(self, doc: dict[str, Any], *, expected_version: int | None) -> int:
        work = partial(
            sql_events.save_doc, name=sql_events.KEYRING_DOC, doc=doc, expected=expected_version
        )
        return await self._write(work, "the key ring changed since it was loaded")

    # audit ---------------------------------------------------------------------------------

    async def add_audit(self, event: AuditEvent) -> None:
        row = sql_accounts.audit_row(event)
        await self._write(partial(sql_accounts.insert_audit, row=row), "audit event already exists")

    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]:
        work = partial(sql_accounts.list_audit, limit=limit, user_id=user_id, type=type)
        return await self._read(work)
