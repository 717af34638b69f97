"""store/sql_prepared.py: a Prepared statement gives what Connection.execute gives, on
every SQL engine — same rows (types processed: JSON, booleans, floats), same row counts,
same wrapped errors — and leaves the transaction usable."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from tokenward.store.sql import SQLStore
from tokenward.store.sql_prepared import Prepared
from tokenward.store.tables import users

from .conftest import Backend

pytestmark = pytest.mark.anyio

ROW: dict[str, Any] = {
    "id": "u1",
    "username": "alice",
    "password_hash": "h",
    "roles": ["admin", "user"],
    "disabled": True,
    "token_version": 3,
    "failed_logins": 0,
    "locked_until": None,
    "created_at": 1_700_000_000.125,
    "password_changed_at": 1_700_000_000.5,
}
SELECT = sa.select(users).where(users.c.id == sa.bindparam("uid"))
INSERT = Prepared(sa.insert(users), keys=list(ROW))
RENAME = Prepared(
    sa.update(users).where(users.c.id == sa.bindparam("uid")).values(username=sa.bindparam("n"))
)


@pytest.fixture
async def store(sql_backend: Backend) -> Any:
    opened = sql_backend.open()
    assert isinstance(opened, SQLStore)
    await opened.migrate()
    yield opened
    await opened.close()


async def test_rows_and_counts_as_connection_execute_gives_them(store: SQLStore) -> None:
    def work(conn: Connection) -> tuple[Any, ...]:
        assert INSERT.rowcount(conn, ROW) == 1
        prepared = Prepared(SELECT).first(conn, {"uid": "u1"})
        expected = conn.execute(SELECT, {"uid": "u1"}).first()
        assert expected is not None and prepared == tuple(expected)
        assert Prepared(SELECT).first(conn, {"uid": "nobody"}) is None
        assert RENAME.rowcount(conn, {"uid": "u1", "n": "alicia"}) == 1
        assert RENAME.rowcount(conn, {"uid": "nobody", "n": "x"}) == 0
        return prepared

    row = await store._runner.write(work)
    assert row[users.c.keys().index("roles")] == ["admin", "user"]  # JSON decoded
    assert row[users.c.keys().index("disabled")] is True  # not SQLite's 1
    assert row[users.c.keys().index("created_at")] == 1_700_000_000.125
    assert (await store.get_user("u1")).username == "alicia"  # type: ignore[union-attr]


async def test_every_parameter_must_be_given(store: SQLStore) -> None:
    def work(conn: Connection) -> None:
        INSERT.rowcount(conn, {k: v for k, v in ROW.items() if k != "roles"})

    with pytest.raises(TypeError, match="missing parameters: roles"):
        await store._runner.write(work)
    with pytest.raises(TypeError, match="missing parameters: n"):
        await store._runner.write(lambda conn: RENAME.rowcount(conn, {"uid": "u1"}))


async def test_driver_errors_are_wrapped_and_the_store_goes_on(store: SQLStore) -> None:
    await store._runner.write(lambda conn: INSERT.rowcount(conn, ROW))

    def twice(conn: Connection) -> None:
        INSERT.rowcount(conn, {**ROW, "id": "u2"})  # a new id, the same username

    with pytest.raises(sa.exc.IntegrityError) as info:
        await store._runner.write(twice)
    assert "alice" not in str(info.value)  # the parameters stay out of the message
    assert await store.get_user("u2") is None
    assert (await store.get_user("u1")) is not None
