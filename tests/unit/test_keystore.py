"""Key ring persistence: encrypted at rest, atomic, wrong master key is a clear error."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tokenward import KeyPurpose, KeyRing, KeyState
from tokenward.errors import KeyStoreError, MasterKeyError
from tokenward.jose.jwk import thumbprint
from tokenward.keystore import (
    KEYRING_FILE,
    MASTER_KEY_FILE,
    decode_master_key,
    load_keyring,
    master_key,
    save_keyring,
)

from ..conftest import T0


def _ring() -> KeyRing:
    ring = KeyRing()
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        ring.generate(alg, T0)
    ring.generate("ES384", T0, purpose=KeyPurpose.REFRESH)
    ring.generate("ES256", T0, state=KeyState.NEXT)
    return ring


def test_roundtrip_keeps_every_key_and_state(tmp_path: Path) -> None:
    master = master_key(tmp_path)
    ring = _ring()
    save_keyring(ring, tmp_path, master)
    loaded = load_keyring(tmp_path, master)
    assert loaded.keys == ring.keys  # kid, alg, state, purpose, timestamps
    for a, b in zip(ring, loaded, strict=True):
        if a.symmetric:
            assert a.material == b.material
        else:
            assert thumbprint(a.material) == thumbprint(b.material)


def test_private_material_is_not_in_the_file(tmp_path: Path) -> None:
    master = master_key(tmp_path)
    ring = _ring()
    path = save_keyring(ring, tmp_path, master)
    text = path.read_text()
    assert "PRIVATE KEY" not in text
    hs = next(k for k in ring if k.symmetric)
    assert base64.urlsafe_b64encode(hs.material).rstrip(b"=").decode() not in text
    assert hs.material.hex() not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_master_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    first = master_key(tmp_path)
    assert stat.S_IMODE((tmp_path / MASTER_KEY_FILE).stat().st_mode) == 0o600
    assert master_key(tmp_path) == first and len(first) == 32


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    master_key(tmp_path)
    os.chmod(tmp_path / MASTER_KEY_FILE, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        master_key(tmp_path)


def test_env_master_key_wins_and_is_validated(tmp_path: Path) -> None:
    raw = os.urandom(32)
    env = base64.urlsafe_b64encode(raw).decode()
    assert master_key(tmp_path, env) == raw
    assert not (tmp_path / MASTER_KEY_FILE).exists()
    for bad in ("short", base64.urlsafe_b64encode(b"x" * 16).decode(), "!!!!"):
        with pytest.raises(MasterKeyError):
            decode_master_key(bad)


def test_missing_master_key_without_create(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="TOKENWARD_MASTER_KEY"):
        master_key(tmp_path, create=False)


def test_wrong_master_key_is_a_clear_error_never_garbage(tmp_path: Path) -> None:
    save_keyring(_ring(), tmp_path, master_key(tmp_path))
    with pytest.raises(MasterKeyError, match="does not open"):
        load_keyring(tmp_path, os.urandom(32))


def test_wrong_master_key_detected_even_for_empty_ring(tmp_path: Path) -> None:
    save_keyring(KeyRing(), tmp_path, b"a" * 32)
    with pytest.raises(MasterKeyError):
        load_keyring(tmp_path, b"b" * 32)


def test_swapped_ciphertexts_are_detected(tmp_path: Path) -> None:
    master = master_key(tmp_path)
    ring = KeyRing()
    ring.generate("HS256", T0)
    ring.generate("HS384", T0)
    path = save_keyring(ring, tmp_path, master)
    doc = json.loads(path.read_text())
    a, b = doc["keys"]
    a["sealed"], b["sealed"] = b["sealed"], a["sealed"]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="tampered"):
        load_keyring(tmp_path, master)


@pytest.mark.parametrize(
    "content", ["", "not json", "[]", '{"format": 99}', '{"format": 1, "check": "x"}']
)
def test_corrupt_store_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / KEYRING_FILE).write_text(content)
    with pytest.raises(KeyStoreError):
        load_keyring(tmp_path, b"a" * 32)


def test_missing_store_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="keys generate"):
        load_keyring(tmp_path, b"a" * 32)


def test_failed_save_leaves_the_previous_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = master_key(tmp_path)
    ring = _ring()
    save_keyring(ring, tmp_path, master)

    def boom(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("tokenward.keystore.os.replace", boom)
    bigger = _ring()
    with pytest.raises(OSError, match="disk full"):
        save_keyring(bigger, tmp_path, master)
    assert load_keyring(tmp_path, master).keys == ring.keys
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEYRING_FILE, MASTER_KEY_FILE]
