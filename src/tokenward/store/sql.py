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
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tokenward.errors import Conflict, NotFound, StoreUnavailable
from tokenward.store import sql_events, sql_refresh
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
from tokenward.store.changes import check_first_token, later_lock, user_changes
from tokenward.store.migrations import upgrade
from tokenward.store.sql_engine import open_engine
from tokenward.store.sql_runner import Work
from tokenward.store.tables import audit_events, clients, denylist, kv, users

# A database that cannot be reached (refused, reset, timed out, pool exhausted): a 503 for
# the client, never a 500 (issue 4: recovery without restart).
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError, PoolTimeout)

__all__ = ["SQLStore"]

T = TypeVar("T")

EPOCH_KEY = "epoch"
_U = users.c


def _user_row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if k == "roles" else v for k, v in values.items()}


def _user(row: sa.Row[Any]) -> User:
    return sql_refresh.user_record(dict(row._mapping))


def _client(row: sa.Row[Any]) -> Client:
    values = dict(row._mapping)
    return Client(
        **{**values, "scopes": tuple(values["scopes"]), "grant_types": tuple(values["grant_types"])}
    )


def _audit_row(event: AuditEvent) -> dict[str, Any]:
    return dataclasses.asdict(event)


def _audit(row: sa.Row[Any]) -> AuditEvent:
    values = dict(row._mapping)
    del values["seq"]
    return AuditEvent(**values)


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

    async def _read(self, fn: Work[T]) -> T:
        self._check_open()
        try:
            return await self._runner.read(fn)
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
        row = _user_row(dataclasses.asdict(user))
        await self._write(
            lambda conn: conn.execute(sa.insert(users).values(**row)), "user already exists"
        )

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user(_U.id == user_id)

    async def get_user_by_name(self, username: str) -> User | None:
        return await self._one_user(_U.username == username)

    async def _one_user(self, where: sa.ColumnElement[bool]) -> User | None:
        return await self._read(partial(_select_user, where))

    async def list_users(self) -> Sequence[User]:
        query = sa.select(users).order_by(_U.username)
        return await self._read(lambda conn: [_user(r) for r in conn.execute(query)])

    async def update_user(self, user_id: str, **changes: Any) -> User | None:
        values = user_changes(changes)
        if not values:
            return await self.get_user(user_id)
        query = sa.update(users).where(_U.id == user_id).values(**_user_row(values))
        row = await self._write(
            lambda conn: conn.execute(query.returning(users)).first(), "user already exists"
        )
        return None if row is None else _user(row)

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
        outcome = await self._write(partial(_record_failure, user_id=user_id, lock_for=lock_for))
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
        return None if row is None else _client(row)

    async def list_clients(self) -> Sequence[Client]:
        query = sa.select(clients).order_by(clients.c.client_id)
        return await self._read(lambda conn: [_client(r) for r in conn.execute(query)])

    # refresh families (the SQL is in sql_refresh) ------------------------------------------

    async def start_family(self, family: Family, first: RefreshToken) -> None:
        check_first_token(family, first)
        await self._write(
            partial(sql_refresh.start_family, family=family, first=first),
            "family or token already exists",
        )

    async def get_family(self, family_id: str) -> Family | None:
        return await self._read(partial(sql_refresh.get_family, family_id=family_id))

    async def list_families(self, user_id: str, *, active_only: bool = True) -> Sequence[Family]:
        return await self._read(
            partial(sql_refresh.list_families, user_id=user_id, active_only=active_only)
        )

    async def get_refresh(self, token_hash: str) -> RefreshToken | None:
        return await self._read(partial(sql_refresh.get_refresh, token_hash=token_hash))

    async def get_refresh_session(self, token_hash: str) -> RefreshSession | None:
        return await self._read(partial(sql_refresh.get_session, token_hash=token_hash))

    async def rotate_refresh(
        self,
        token_hash: str,
        child: RefreshToken,
        now: float,
        idle_expires_at: float,
        *,
        audit: AuditEvent | None = None,
    ) -> RotateResult:
        work = partial(
            sql_refresh.rotate,
            token_hash=token_hash,
            child=child,
            now=now,
            idle_expires_at=idle_expires_at,
            audit=None if audit is None else _audit_row(audit),
        )
        return await self._write(work, "token already exists")

    async def regrant_refresh(
        self, parent_hash: str, child: RefreshToken, now: float, idle_expires_at: float
    ) -> RefreshToken | None:
        work = partial(
            sql_refresh.regrant,
            parent_hash=parent_hash,
            child=child,
            now=now,
            idle_expires_at=idle_expires_at,
        )
        return await self._write(work, "token already exists")

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
        stmt = self._dialect.insert(denylist).values(jti=jti, expires_at=expires_at)
        # a later expiry wins: the jti must stay denied as long as any copy can be valid
        stmt = stmt.on_conflict_do_update(
            index_elements=[denylist.c.jti],
            set_={"expires_at": stmt.excluded.expires_at},
            where=denylist.c.expires_at < stmt.excluded.expires_at,
        )
        await self._write(lambda conn: conn.execute(stmt))

    async def denied(self, now: float) -> Sequence[tuple[str, float]]:
        query = sa.select(denylist).where(denylist.c.expires_at > now).order_by(denylist.c.jti)
        return await self._read(
            lambda conn: [(row.jti, row.expires_at) for row in conn.execute(query)]
        )

    async def get_epoch(self) -> float:
        query = sa.select(kv.c.value).where(kv.c.key == EPOCH_KEY)
        value = await self._read(lambda conn: conn.execute(query).scalar_one_or_none())
        return 0.0 if value is None else float(value)

    async def set_epoch(self, epoch: float) -> None:
        # repr() of a float round-trips exactly
        stmt = self._dialect.insert(kv).values(key=EPOCH_KEY, value=repr(float(epoch)))
        stmt = stmt.on_conflict_do_update(
            index_elements=[kv.c.key], set_={"value": stmt.excluded.value}
        )
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
        stmt = sa.insert(audit_events).values(**_audit_row(event))
        await self._write(lambda conn: conn.execute(stmt), "audit event already exists")

    async def list_audit(
        self, *, limit: int = 100, user_id: str | None = None, type: str | None = None
    ) -> Sequence[AuditEvent]:
        c = audit_events.c
        query = sa.select(audit_events).order_by(c.at.desc(), c.seq.desc()).limit(max(limit, 0))
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if type is not None:
            query = query.where(c.type == type)
        return await self._read(lambda conn: [_audit(r) for r in conn.execute(query)])


_COUNT_FAILURE = (
    sa.update(users)
    .where(_U.id == sa.bindparam("uid"))
    .values(failed_logins=_U.failed_logins + 1)  # in the database: concurrent guesses all count
    .returning(_U.failed_logins, _U.locked_until)
)


def _record_failure(
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


def _select_user(where: sa.ColumnElement[bool], conn: sa.Connection) -> User | None:
    row = conn.execute(sa.select(users).where(where)).first()
    return None if row is None else _user(row)
