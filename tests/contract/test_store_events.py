"""The Store contract, part 3: revocation events (the feed's cursor), deny-list upkeep and
the shared key ring document with its compare-and-set.

Every test runs against each backend (memory, SQLite, PostgreSQL when configured).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.contract.conftest import Backend
from tests.contract.records import T0
from tokenward.errors import Conflict
from tokenward.store import sql_events
from tokenward.store.base import RevocationEvent, Store
from tokenward.store.sql import SQLStore
from tokenward.store.sql_engine import normalise_url

pytestmark = pytest.mark.anyio

DENY = {"jti": "j1", "exp": T0 + 900}


# events ----------------------------------------------------------------------------------


async def test_events_come_back_oldest_first_after_a_cursor(store: Store) -> None:
    assert await store.revocation_cursor() == 0
    assert list(await store.revocation_events(0)) == []
    first = await store.add_revocation_event("deny", DENY, T0)
    second = await store.add_revocation_event("epoch", {"epoch": T0 + 1.5}, T0 + 1)
    third = await store.add_revocation_event(
        "token_version", {"iss": "https://a", "sub": "u1", "version": 3}, T0 + 2
    )
    assert 0 < first < second < third
    assert await store.revocation_cursor() == third
    events = await store.revocation_events(0)
    assert events == [
        RevocationEvent(first, T0, "deny", DENY),
        RevocationEvent(second, T0 + 1, "epoch", {"epoch": T0 + 1.5}),
        RevocationEvent(
            third, T0 + 2, "token_version", {"iss": "https://a", "sub": "u1", "version": 3}
        ),
    ]
    assert [e.id for e in await store.revocation_events(first)] == [second, third]
    assert list(await store.revocation_events(third)) == []


async def test_events_are_paged_by_limit(store: Store) -> None:
    ids = [await store.add_revocation_event("remove_kid", {"kid": f"k{n}"}, T0) for n in range(5)]
    assert [e.id for e in await store.revocation_events(0, limit=2)] == ids[:2]
    assert [e.id for e in await store.revocation_events(ids[1], limit=2)] == ids[2:4]
    assert list(await store.revocation_events(0, limit=0)) == []


async def test_event_data_is_a_copy(store: Store) -> None:
    data: dict[str, Any] = {"kid": "k1"}
    await store.add_revocation_event("remove_kid", data, T0)
    data["kid"] = "changed"
    (event,) = await store.revocation_events(0)
    event.data["kid"] = "changed again"
    assert (await store.revocation_events(0))[0].data == {"kid": "k1"}


async def test_unknown_event_kinds_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        await store.add_revocation_event("nuke", {}, T0)
    assert await store.revocation_cursor() == 0


async def test_concurrent_adds_get_distinct_increasing_ids(backend: Backend) -> None:
    """20 writers at once (on PostgreSQL: four engines, i.e. separate connections)."""
    stores = [backend.open() for _ in range(4)]
    await stores[0].migrate()
    ids: list[int] = []

    async def add(n: int) -> None:
        ids.append(await stores[n % 4].add_revocation_event("deny", {"jti": f"j{n}"}, T0))

    try:
        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(add, n)
        assert len(set(ids)) == 20
        events = await stores[1].revocation_events(0, limit=100)
        assert [e.id for e in events] == sorted(ids)
        assert sorted(e.data["jti"] for e in events) == sorted(f"j{n}" for n in range(20))
    finally:
        for store in {id(s): s for s in stores}.values():
            await store.close()


async def test_a_follower_polling_during_concurrent_adds_misses_nothing(backend: Backend) -> None:
    """The cursor guarantee: ids become visible in order, so moving past one is safe."""
    writers = [backend.open() for _ in range(3)]
    await writers[0].migrate()
    reader = backend.open()
    seen: list[int] = []
    done = anyio.Event()

    async def write(n: int) -> None:
        for i in range(10):
            await writers[n].add_revocation_event("deny", {"jti": f"w{n}-{i}"}, T0)

    async def follow() -> None:
        cursor = 0
        for _ in range(10_000):  # bounded; ends once the writers are done and all is read
            finished = done.is_set()  # before the read: a read after it sees every event
            batch = await reader.revocation_events(cursor, limit=7)
            seen.extend(e.id for e in batch)
            cursor = batch[-1].id if batch else cursor
            if finished and not batch:
                return
            await anyio.sleep(0)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            async with anyio.create_task_group() as inner:
                for n in range(3):
                    inner.start_soon(write, n)
            done.set()
        assert len(seen) == 30 and seen == sorted(seen)
    finally:
        for store in {id(s): s for s in [*writers, reader]}.values():
            await store.close()


async def test_purging_events_keeps_the_newest_and_never_reuses_ids(store: Store) -> None:
    old = await store.add_revocation_event("deny", DENY, T0)
    mid = await store.add_revocation_event("deny", DENY, T0 + 10)
    new = await store.add_revocation_event("deny", DENY, T0 + 20)
    assert await store.purge_revocation_events(T0 + 10) == 1
    assert [e.id for e in await store.revocation_events(0)] == [mid, new]
    assert await store.purge_revocation_events(T0 + 1000) == 1  # the newest stays
    assert [e.id for e in await store.revocation_events(0)] == [new]
    assert await store.revocation_cursor() == new
    later = await store.add_revocation_event("deny", DENY, T0 + 30)
    assert later > new > old


# deny-list upkeep ------------------------------------------------------------------------


async def test_purge_denied_drops_only_expired_entries(store: Store) -> None:
    await store.deny_jti("a", T0 + 10)
    await store.deny_jti("b", T0 + 20)
    assert await store.purge_denied(T0 + 9) == 0
    assert await store.purge_denied(T0 + 10) == 1  # expiry is inclusive, as in denied()
    assert list(await store.denied(T0)) == [("b", T0 + 20)]
    assert await store.purge_denied(T0 + 100) == 1
    assert list(await store.denied(0)) == []


# the shared key ring document ------------------------------------------------------------

DOC = {"format": 1, "check": "c2VhbGVk", "keys": [{"kid": "k1", "sealed": "YWJj"}]}


async def test_keyring_doc_round_trip_and_versions(store: Store) -> None:
    assert await store.load_keyring_doc() is None
    assert await store.save_keyring_doc(DOC, expected_version=None) == 1
    loaded = await store.load_keyring_doc()
    assert loaded is not None and loaded.doc == DOC and loaded.version == 1
    changed = {**DOC, "keys": []}
    assert await store.save_keyring_doc(changed, expected_version=1) == 2
    loaded = await store.load_keyring_doc()
    assert loaded is not None and loaded.doc == changed and loaded.version == 2
    assert "c2VhbGVk" not in repr(loaded)


async def test_keyring_doc_compare_and_set_refuses_a_stale_version(store: Store) -> None:
    await store.save_keyring_doc(DOC, expected_version=None)
    with pytest.raises(Conflict):
        await store.save_keyring_doc({**DOC, "keys": []}, expected_version=None)
    await store.save_keyring_doc({**DOC, "keys": []}, expected_version=1)
    with pytest.raises(Conflict):
        await store.save_keyring_doc(DOC, expected_version=1)  # someone else saved v2
    loaded = await store.load_keyring_doc()
    assert loaded is not None and loaded.doc["keys"] == [] and loaded.version == 2


async def test_concurrent_keyring_saves_exactly_one_wins(backend: Backend) -> None:
    """Two nodes rotating at once from the same version: one saves, the other must reload."""
    stores = [backend.open() for _ in range(4)]
    await stores[0].migrate()
    await stores[0].save_keyring_doc(DOC, expected_version=None)
    outcomes: list[str] = []

    async def save(n: int) -> None:
        try:
            await stores[n % 4].save_keyring_doc({**DOC, "n": n}, expected_version=1)
            outcomes.append(f"saved {n}")
        except Conflict:
            outcomes.append("conflict")

    try:
        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(save, n)
        winners = [o for o in outcomes if o.startswith("saved")]
        assert len(winners) == 1 and outcomes.count("conflict") == 7
        loaded = await stores[3].load_keyring_doc()
        assert loaded is not None and loaded.version == 2
        assert f"saved {loaded.doc['n']}" == winners[0]
    finally:
        for store in {id(s): s for s in stores}.values():
            await store.close()


async def test_an_uncommitted_event_holds_later_ids_back(sql_backend: Backend) -> None:
    """While one writer's event is uncommitted, no later id can commit before it (the
    reason for the lock in sql_events.py: a reader would otherwise skip the earlier id)."""
    first, second, reader = (sql_backend.open() for _ in range(3))
    assert isinstance(first, SQLStore)
    await first.migrate()
    later: list[int] = []

    async def add_later() -> None:
        later.append(await second.add_revocation_event("deny", {"jti": "later"}, T0))

    try:
        # an open transaction holding one event
        async with anyio.create_task_group() as tg, _held_transaction(sql_backend) as run:
            early = await run(
                partial(sql_events.add_event, kind="deny", data={"jti": "early"}, at=T0)
            )
            tg.start_soon(add_later)
            with anyio.move_on_after(0.5):  # bounded: the later writer must be waiting
                while not later:
                    await anyio.sleep(0.01)
            assert later == [] and list(await reader.revocation_events(0)) == []
        assert [e.id for e in await reader.revocation_events(0)] == [early, *later]
        assert later[0] > early
    finally:
        for store in (first, second, reader):
            await store.close()


@asynccontextmanager
async def _held_transaction(backend: Backend) -> AsyncIterator[Callable[[Any], Awaitable[Any]]]:
    """A write transaction kept open across awaits (the store's own close at once), on
    the loop's thread: its statements are quick and never wait for a lock here."""
    assert backend.url is not None
    if backend.name == "sqlite":
        engine = sa.create_engine(backend.url, connect_args={"isolation_level": None})
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

            async def run_sqlite(fn: Any) -> Any:
                return fn(conn)

            yield run_sqlite
            conn.exec_driver_sql("COMMIT")
        engine.dispose()
        return
    url = normalise_url(backend.url)  # the asyncpg driver, as the store uses
    pg = create_async_engine(url, connect_args=dict(backend.connect_args))
    async with pg.connect() as aconn, aconn.begin():

        async def run_pg(fn: Any) -> Any:
            return await aconn.run_sync(fn)

        yield run_pg
    await pg.dispose()
