"""The shared key ring: where it lives, compare-and-set updates, reloads, master key checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokenward import FrozenClock
from tokenward.errors import Conflict, MasterKeyError
from tokenward.keys import KeyRing, KeyState
from tokenward.keystore import seal_keyring
from tokenward.server.keyring import FileDocs, open_shared_ring, rotate_now, uses_store
from tokenward.server.settings import Settings
from tokenward.store import MemoryStore

from ...conftest import T0

pytestmark = pytest.mark.anyio

MASTER = "m" * 43


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(tmp_path: Path, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "master_key": MASTER,
        "keyring_location": "store",
        "signing_alg": "ES256",
    }
    return Settings(**{**values, **over})


def test_auto_location_is_the_store_only_on_postgresql(tmp_path: Path) -> None:
    auto = {"data_dir": tmp_path, "keyring_location": "auto"}
    assert uses_store(Settings(**auto, database_url="postgresql://db/tw"))
    assert not uses_store(Settings(**auto))  # the SQLite file in the data dir
    assert not uses_store(Settings(**auto, database_url="memory://"))
    assert uses_store(Settings(**{**auto, "keyring_location": "store"}))


async def test_nodes_on_one_store_share_one_ring(tmp_path: Path, clock: FrozenClock) -> None:
    store = MemoryStore()
    a = await open_shared_ring(settings(tmp_path / "a"), store, clock)
    b = await open_shared_ring(settings(tmp_path / "b"), store, clock)
    assert a.ring.keys == b.ring.keys and a.version == b.version == 1
    assert not (tmp_path / "a" / "keys.json").exists()  # in the store, not on disk


async def test_a_stale_node_updates_on_top_of_the_newest_ring(
    tmp_path: Path, clock: FrozenClock
) -> None:
    store = MemoryStore()
    a = await open_shared_ring(settings(tmp_path), store, clock)
    b = await open_shared_ring(settings(tmp_path), store, clock)
    _, first = await rotate_now(a, "ES256", T0 + 1)
    _, second = await rotate_now(b, "ES256", T0 + 2)  # b still had version 1: conflict, retry
    assert b.version == 3 and {first.kid, second.kid} <= {k.kid for k in b.ring}
    assert await a.reload() is True and a.ring.keys == b.ring.keys
    assert await a.reload() is False  # nothing new
    assert [k.state for k in a.ring].count(KeyState.ACTIVE) == 1


async def test_an_update_that_changes_nothing_saves_nothing(
    tmp_path: Path, clock: FrozenClock
) -> None:
    store = MemoryStore()
    a = await open_shared_ring(settings(tmp_path), store, clock)
    assert await a.update(lambda _ring: []) == []
    stored = await store.load_keyring_doc()
    assert stored is not None and stored.version == 1


async def test_every_node_needs_the_same_master_key(tmp_path: Path, clock: FrozenClock) -> None:
    store = MemoryStore()
    await open_shared_ring(settings(tmp_path), store, clock)
    with pytest.raises(MasterKeyError, match="same TOKENWARD_MASTER_KEY"):
        await open_shared_ring(settings(tmp_path, master_key="n" * 43), store, clock)


async def test_file_documents_compare_and_set(tmp_path: Path) -> None:
    docs = FileDocs(tmp_path)
    ring = KeyRing()
    ring.generate("HS256", T0)
    doc = seal_keyring(ring, b"k" * 32)
    assert await docs.load() is None
    version = await docs.save(doc, None)
    with pytest.raises(Conflict):
        await docs.save(doc, None)  # it exists now
    loaded = await docs.load()
    assert loaded is not None and loaded.version == version and loaded.doc == doc
    with pytest.raises(Conflict):
        await docs.save(doc, version + 1)
