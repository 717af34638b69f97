"""What only the SQL backends have: the schema, migrations, engines sharing one file, URLs."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from tests.contract.conftest import Backend
from tests.contract.records import DAY, T0, child, family, first_token, user
from tokenward.errors import ConfigError, Conflict
from tokenward.store import SCHEMES, MemoryStore, open_store
from tokenward.store.base import RefreshState, RotateOutcome, RotateResult, Store
from tokenward.store.migrations import VERSION_TABLE, alembic_config
from tokenward.store.sql import SQLStore
from tokenward.store.sql_engine import open_engine
from tokenward.store.tables import metadata

TABLES = {
    "users",
    "clients",
    "families",
    "refresh_tokens",
    "denylist",
    "kv",
    "audit_events",
    "revocation_events",
    "documents",
}


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return list(compare_metadata(context, metadata))


@pytest.mark.anyio
async def test_migrations_build_exactly_tables_py(sql_backend: Backend) -> None:
    store = sql_backend.open()
    await store.migrate()
    await store.close()
    assert sql_backend.url is not None
    runner, _ = open_engine(sql_backend.url, sql_backend.connect_args)
    try:
        assert await runner.read(_diff) == []
    finally:
        await runner.dispose()


@pytest.mark.anyio
async def test_concurrent_migrations(sql_backend: Backend) -> None:
    """Nodes (or a server and the CLI) starting together: one migrates, the others wait
    (PostgreSQL's advisory lock, SQLite's BEGIN IMMEDIATE) and find the schema current."""
    stores = [sql_backend.open() for _ in range(4)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.migrate)
        await stores[0].add_user(user(1))
        assert await stores[-1].get_user("u1") == user(1)
    finally:
        for store in stores:
            await store.close()


def _sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        # sqlite_sequence is SQLite's own (AUTOINCREMENT counters), not ours
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        return {r[0] for r in rows}


def test_alembic_command_line_path(tmp_path: Path) -> None:
    """env.py given only a URL (as the alembic CLI would) opens the store's engine itself."""
    path = tmp_path / "cli.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "head")
    assert _sqlite_tables(path) == TABLES | {VERSION_TABLE}
    command.downgrade(config, "base")
    assert _sqlite_tables(path) == {VERSION_TABLE}


# two engines on one SQLite file (a second process: the CLI, another worker) ---------------


@pytest.fixture
async def two_stores(tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = SQLStore(url), SQLStore(url)
    await first.migrate()
    await second.migrate()
    yield first, second
    await first.close()
    await second.close()


@pytest.mark.anyio
async def test_sqlite_engines_see_each_others_writes(two_stores: tuple[Store, Store]) -> None:
    first, second = two_stores
    await first.add_user(user(1))
    assert await second.get_user("u1") == user(1)
    assert await second.bump_token_version("u1") == 1
    stored = await first.get_user("u1")
    assert stored is not None and stored.token_version == 1


@pytest.mark.anyio
async def test_sqlite_engines_write_concurrently(two_stores: tuple[Store, Store]) -> None:
    """Writers of two engines wait on busy_timeout instead of failing 'database is locked'."""
    first, second = two_stores
    await first.add_user(user(1))
    fam = family("f1")
    r0 = first_token(fam)
    await first.start_family(fam, r0)
    results: list[RotateResult] = []

    async def rotate(store: Store, n: int) -> None:
        new = child(r0, f"c{n}", T0 + 1)
        results.append(await store.rotate_refresh(r0.token_hash, new, T0 + 1, T0 + DAY))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(first.bump_token_version, "u1")
            tg.start_soon(rotate, (first, second)[n % 2], n)
            tg.start_soon(second.bump_token_version, "u1")
    stored = await second.get_user("u1")
    assert stored is not None and stored.token_version == 40
    assert [r.outcome for r in results].count(RotateOutcome.ROTATED) == 1


# open_store and URLs ---------------------------------------------------------------------


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


@pytest.mark.anyio
async def test_open_store_sqlite(tmp_path: Path) -> None:
    # sqlite+aiosqlite: the URL form of earlier versions; every form runs on the stdlib driver
    for scheme in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        store = open_store(f"{scheme}:///{tmp_path / (scheme + '.db')}")
        assert isinstance(store, SQLStore)
        assert "sqlite+pysqlite" in repr(store)
        await store.migrate()
        assert await store.ping()
        await store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
async def test_open_store_postgresql_uses_asyncpg_and_hides_the_password(scheme: str) -> None:
    store = open_store(f"{scheme}://tw:s3cret-pw@db.invalid:5432/tw")
    assert isinstance(store, SQLStore)
    assert repr(store) == "SQLStore('postgresql+asyncpg://tw:***@db.invalid:5432/tw')"
    await store.close()


@pytest.mark.parametrize(
    "url", ["mysql://root:s3cret-pw@db/tw", "s3cret-pw", "redis://:s3cret-pw@cache/0"]
)
def test_unknown_schemes_are_refused_without_echoing_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert "s3cret-pw" not in str(caught.value)
    assert "s3cret-pw" not in repr(caught.value)


def test_sql_store_refuses_other_drivers() -> None:
    with pytest.raises(ConfigError) as caught:
        SQLStore("postgresql+psycopg2://tw:s3cret-pw@db/tw")
    assert "s3cret-pw" not in str(caught.value)


def test_open_store_takes_a_registry() -> None:
    made = MemoryStore()
    assert open_store("custom://x", schemes={**SCHEMES, "custom": lambda _url: made}) is made
    with pytest.raises(ConfigError):
        open_store("custom://x")


@pytest.mark.anyio
async def test_concurrent_writes_fail_alone(sql_backend: Backend) -> None:
    """Writes committed together (SQLite's group commit) stay atomic one by one: the
    ones that fail roll back their own work only, and the others are all stored."""
    store = sql_backend.open()
    await store.migrate()
    taken = user(0).username
    outcomes: dict[int, str] = {}

    async def add(n: int) -> None:
        try:
            await store.add_user(user(n, username=taken) if n % 4 == 0 else user(n))
            outcomes[n] = "stored"
        except Conflict:
            outcomes[n] = "conflict"

    try:
        await store.add_user(user(0))
        async with anyio.create_task_group() as tg:
            for n in range(1, 41):
                tg.start_soon(add, n)
        assert sorted(n for n, o in outcomes.items() if o == "conflict") == list(range(4, 41, 4))
        stored = {u.id for u in await store.list_users()}
        assert stored == {"u0"} | {f"u{n}" for n in range(1, 41) if n % 4}
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_writer_outlives_a_job_that_raises_anything(sql_backend: Backend) -> None:
    """A job raising even a BaseException fails alone; the next writes still complete."""
    store = sql_backend.open()
    assert isinstance(store, SQLStore)
    await store.migrate()

    def explode(_conn: Connection) -> None:
        raise KeyboardInterrupt  # not an Exception: must not take the writer thread down

    try:
        with pytest.raises(KeyboardInterrupt):
            await store._runner.write(explode)
        await store.add_user(user(1))
        assert await store.get_user("u1") == user(1)
    finally:
        await store.close()


def test_migration_0003_lowercases_usernames_where_free(tmp_path: Path) -> None:
    """Accounts of earlier versions with capitals get their lowercase name when it is free;
    a capitalised twin of an existing lowercase name keeps its own."""
    path = tmp_path / "old.db"
    config = alembic_config(f"sqlite:///{path}")
    command.upgrade(config, "0002")
    with sqlite3.connect(path) as db:
        for n, name in enumerate(["Alice", "alice", "Bob", "carol", "DAVE"]):
            db.execute(
                "INSERT INTO users (id, username, password_hash, roles, disabled, token_version,"
                " failed_logins, created_at, password_changed_at)"
                " VALUES (?, ?, 'h', '[]', 0, 0, 0, 0, 0)",
                (f"u{n}", name),
            )
    command.upgrade(config, "head")
    with sqlite3.connect(path) as db:
        names = dict(db.execute("SELECT id, username FROM users").fetchall())
    assert names == {"u0": "Alice", "u1": "alice", "u2": "bob", "u3": "carol", "u4": "dave"}


@pytest.mark.anyio
async def test_a_write_whose_caller_is_cancelled_still_commits_or_rolls_back_whole(
    sql_backend: Backend,
) -> None:
    """Cancelling the awaiting task never leaves half a write, and the store keeps working."""
    store = sql_backend.open()
    await store.migrate()
    fam = family("f1")
    r0 = first_token(fam)
    try:
        await store.add_user(user(1))
        await store.start_family(fam, r0)
        with anyio.move_on_after(0):  # cancelled at its first await: before or after commit
            await store.rotate_refresh(r0.token_hash, child(r0, "c1", T0 + 1), T0 + 1, T0 + DAY)
        # the writer still answers; and on SQLite, queued behind the abandoned job, this
        # write returning means that job is over (committed or rolled back)
        assert await store.bump_token_version("u1") == 1
        before = await store.get_refresh(r0.token_hash)
        new = await store.get_refresh(child(r0, "c1", T0 + 1).token_hash)
        assert before is not None
        # all or nothing: the parent is used exactly when its child exists
        assert (before.state is RefreshState.USED) == (new is not None)
    finally:
        await store.close()
