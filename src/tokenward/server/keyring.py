"""The server's signing keys: one sealed document, in the data dir or in the shared store.

The document is the one keystore.py writes to ``keys.json`` (private keys sealed under the
master key), so wherever it lives — a file, or the database every node shares — nothing
but the nodes holding ``TOKENWARD_MASTER_KEY`` can read a private key.

Where (setting ``keyring_location``): ``auto`` keeps the file for SQLite and the memory
store (one machine; ``tokenward keys`` works on the file) and uses the store on
PostgreSQL, where several nodes share the database and must sign with the same keys. On
the first start in the store, an existing ``keys.json`` moves in (docs/scale-out.md).

Every change is a compare-and-set on the document's version (:meth:`SharedRing.update`):
of two nodes rotating at once one saves, the other reloads and finds nothing left to do,
so no key is ever lost. A saved change is announced (``keys_changed``); the other nodes
reload on it and on their periodic tick.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from tokenward.clock import Clock
from tokenward.errors import Conflict, KeyStoreError, MasterKeyError
from tokenward.keys import KeyPurpose, KeyRing, KeyState, ManagedKey
from tokenward.keystore import (
    KEYRING_FILE,
    master_key,
    open_keyring,
    read_keyring_doc,
    save_keyring,
    seal_keyring,
    write_keyring_doc,
)
from tokenward.rotation import DAY, RotationPolicy
from tokenward.server.settings import Settings
from tokenward.store.base import KeyringDoc, Store

__all__ = [
    "FileDocs",
    "SharedRing",
    "StoreDocs",
    "open_shared_ring",
    "rotate_now",
    "rotation_policy",
    "save_ring",
    "uses_store",
]

log = logging.getLogger("tokenward.server")
T = TypeVar("T")
ATTEMPTS = 5  # compare-and-set retries; each loser finds the winner's ring next time


def rotation_policy(settings: Settings) -> RotationPolicy:
    return RotationPolicy(
        alg=settings.signing_alg,
        period=settings.key_rotation_days * DAY,
        publish_ahead=min(
            settings.key_publish_ahead_hours * 3600, settings.key_rotation_days * DAY / 2
        ),
        max_token_ttl=settings.access_ttl,
    )


def _master(settings: Settings) -> bytes:
    env = settings.master_key.get_secret_value() if settings.master_key else None
    return master_key(settings.data_dir, env)


def save_ring(settings: Settings, ring: KeyRing) -> None:
    """Write ``ring`` to the data dir's file (file location only; see SharedRing.update)."""
    save_keyring(ring, settings.data_dir, _master(settings))


def uses_store(settings: Settings) -> bool:
    if settings.keyring_location != "auto":
        return settings.keyring_location == "store"
    return settings.effective_database_url.lower().startswith("postgres")


# -- where the document lives --------------------------------------------------------------
class RingDocs(Protocol):
    where: str

    async def load(self) -> KeyringDoc | None: ...
    async def save(self, doc: dict[str, Any], expected: int | None) -> int: ...


class StoreDocs:
    """In the store every node shares; the store does the compare-and-set."""

    where = "in the database"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self) -> KeyringDoc | None:
        return await self.store.load_keyring_doc()

    async def save(self, doc: dict[str, Any], expected: int | None) -> int:
        return await self.store.save_keyring_doc(doc, expected_version=expected)


def _file_version(doc: Any) -> int:
    raw = json.dumps(doc, sort_keys=True).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:6], "big")


class FileDocs:
    """``keys.json`` on one machine; the version is a hash of the content, and the
    compare-and-set only guards against this machine's other processes, best effort."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.where = str(data_dir / KEYRING_FILE)

    async def load(self) -> KeyringDoc | None:
        if not (self.data_dir / KEYRING_FILE).exists():
            return None
        doc = await anyio.to_thread.run_sync(read_keyring_doc, self.data_dir)
        return KeyringDoc(doc, _file_version(doc))

    async def save(self, doc: dict[str, Any], expected: int | None) -> int:
        current = await self.load()
        if (None if current is None else current.version) != expected:
            raise Conflict("the key ring changed since it was loaded")
        try:
            await anyio.to_thread.run_sync(write_keyring_doc, doc, self.data_dir)
        except OSError as exc:
            raise KeyStoreError(f"cannot write the key store in {self.data_dir}: {exc}") from exc
        return _file_version(doc)


# -- the node's ring -----------------------------------------------------------------------
class SharedRing:
    """The live KeyRing of this node (changed in place: the Issuer and Verifier hold it) and
    the version of the document it was read from."""

    def __init__(
        self, ring: KeyRing, docs: RingDocs | None, master: bytes, version: int | None
    ) -> None:
        self.ring, self.docs, self.version = ring, docs, version
        self._master = master
        # set by the context: publishes ``keys_changed`` to the other nodes
        self.on_change: Callable[[int], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        where = self.docs.where if self.docs else "memory"
        return f"SharedRing({where}, version={self.version}, {self.ring!r})"

    async def update(
        self, change: Callable[[KeyRing], T], *, changed: Callable[[T], bool] = bool
    ) -> T:
        """Apply ``change`` to the newest saved ring and save it by compare-and-set; on a
        conflict start again from the winner's ring. Returns what ``change`` returned."""
        for _ in range(ATTEMPTS):
            stored = await self.docs.load() if self.docs else None
            ring = self._current(stored)
            result = change(ring)
            if not changed(result) or self.docs is None:
                self._adopt(ring, stored.version if stored else self.version)
                return result
            try:
                version = await self.docs.save(
                    seal_keyring(ring, self._master), stored.version if stored else None
                )
            except Conflict:
                continue  # another node saved first
            self._adopt(ring, version)
            if self.on_change is not None:
                await self.on_change(version)
            return result
        raise KeyStoreError("the key ring kept changing during the update; try again")

    async def reload(self) -> bool:
        """Take the saved ring if another node changed it; True when it did."""
        stored = await self.docs.load() if self.docs else None
        if stored is None or stored.version == self.version:
            return False
        ring = self._open(stored)
        if not any(k.state is KeyState.ACTIVE for k in ring):
            log.error("the saved key ring has no active key; keeping this node's")
            return False
        self._adopt(ring, stored.version)
        return True

    def _current(self, stored: KeyringDoc | None) -> KeyRing:
        """A copy to change: ours when it is the saved version (no decryption needed)."""
        if stored is None or stored.version == self.version:
            return KeyRing(self.ring.keys)
        return self._open(stored)

    def _open(self, stored: KeyringDoc) -> KeyRing:
        where = self.docs.where if self.docs else "memory"
        try:
            return open_keyring(stored.doc, self._master, source=where)
        except MasterKeyError:
            raise MasterKeyError(
                f"the master key does not open the key ring {where}: every node needs the "
                "same TOKENWARD_MASTER_KEY"
            ) from None

    def _adopt(self, ring: KeyRing, version: int | None) -> None:
        if ring.keys != self.ring.keys:
            self.ring.replace(ring.keys)
        self.version = version


# -- start-up ------------------------------------------------------------------------------
def _first_key(settings: Settings, now: float) -> ManagedKey:
    secret = settings.hmac_secret
    if settings.signing_alg.startswith("HS") and secret is not None:
        material = secret.get_secret_value().encode()
        return ManagedKey.create(settings.signing_alg, now, material=material)
    return ManagedKey.create(settings.signing_alg, now)


def _ensure_active(ring: KeyRing, settings: Settings, now: float) -> bool:
    if any(k.state is KeyState.ACTIVE and k.purpose is KeyPurpose.ACCESS for k in ring):
        return False
    ring.add(_first_key(settings, now))
    return True


def _file_doc_to_move(settings: Settings, master: bytes) -> dict[str, Any] | None:
    """An existing keys.json, checked (it must open), to move into the store."""
    if not (settings.data_dir / KEYRING_FILE).exists():
        return None
    doc: dict[str, Any] = read_keyring_doc(settings.data_dir)
    open_keyring(doc, master, source=str(settings.data_dir / KEYRING_FILE))
    return doc


async def open_shared_ring(settings: Settings, store: Store, clock: Clock) -> SharedRing:
    """Open the ring where ``settings`` keep it; on first start create (or move in) one."""
    master = _master(settings)
    to_store = uses_store(settings)
    docs: RingDocs = StoreDocs(store) if to_store else FileDocs(settings.data_dir)
    shared = SharedRing(KeyRing(), docs, master, None)
    moved = _file_doc_to_move(settings, master) if to_store else None
    if moved is not None and await docs.load() is None:
        try:
            await docs.save(moved, None)
            (settings.data_dir / KEYRING_FILE).rename(settings.data_dir / "keys.json.moved")
            log.info("moved the key ring from %s into the database", KEYRING_FILE)
        except Conflict:
            pass  # another node moved (or created) one first: theirs is used
    await shared.update(lambda ring: _ensure_active(ring, settings, clock()))
    return shared


async def rotate_now(shared: SharedRing, alg: str, now: float) -> tuple[str, ManagedKey]:
    """Immediate rotation: a new active key; returns the previous kid and the new key."""

    def change(ring: KeyRing) -> tuple[str, ManagedKey]:
        previous = ring.signing_key().kid
        return previous, ring.generate(alg, now)

    return await shared.update(change, changed=lambda _result: True)
