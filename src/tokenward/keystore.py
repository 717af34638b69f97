"""Key ring persistence: private keys encrypted at rest with AES-256-GCM (SECURITY.md "Issuing").

The master key comes from ``TOKENWARD_MASTER_KEY`` (base64url of 32 bytes; read by the
caller at the edge) or from a generated key file of mode 0600. Each key's material is
sealed with its kid, alg and purpose as associated data, so ciphertexts cannot be swapped
between entries, and a sealed check value makes a wrong master key a clear error even for
an empty ring. Files are replaced atomically (write, fsync, rename): a crash mid-save
leaves the previous ring intact.

The sealed document (:func:`seal_keyring` / :func:`open_keyring`) is plain JSON that can be
kept anywhere: ``keys.json`` in the data directory, or the database shared by several
server nodes — which then never sees a private key in clear.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenward.errors import KeyStoreError, MasterKeyError
from tokenward.keys import KeyPurpose, KeyRing, KeyState, ManagedKey

__all__ = [
    "KEYRING_FILE",
    "MASTER_KEY_FILE",
    "load_keyring",
    "master_key",
    "open_keyring",
    "read_keyring_doc",
    "save_keyring",
    "seal_keyring",
    "write_keyring_doc",
]

KEYRING_FILE = "keys.json"
MASTER_KEY_FILE = "master.key"
_FORMAT = 1
_CHECK = b"tokenward key store"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_master_key(value: str) -> bytes:
    """Parse a base64url master key; it must be exactly 32 random bytes."""
    try:
        key = _unb64(value.strip())
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError("TOKENWARD_MASTER_KEY is not base64url") from exc
    if len(key) != 32:
        raise MasterKeyError("TOKENWARD_MASTER_KEY must encode exactly 32 bytes")
    return key


def master_key(data_dir: Path, env_value: str | None = None, *, create: bool = True) -> bytes:
    """The master key: from the environment value, else the key file (created if asked)."""
    if env_value:
        return decode_master_key(env_value)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise MasterKeyError(f"{path} must be readable by its owner only (chmod 600)")
        return decode_master_key(path.read_text())
    if not create:
        raise MasterKeyError(f"no master key: set TOKENWARD_MASTER_KEY or create {path}")
    key = secrets.token_bytes(32)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_b64(key) + "\n")
    return key


def _aad(k: ManagedKey) -> bytes:
    return f"{k.kid}|{k.alg}|{k.purpose}".encode()


def _material_bytes(material: Any) -> bytes:
    if isinstance(material, bytes):
        return material
    return bytes(
        material.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return _b64(nonce + aead.encrypt(nonce, plaintext, aad))


def _open(aead: AESGCM, sealed: str, aad: bytes) -> bytes:
    raw = _unb64(sealed)
    return aead.decrypt(raw[:12], raw[12:], aad)


def _entry(aead: AESGCM, k: ManagedKey) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "alg": k.alg,
        "purpose": str(k.purpose),
        "state": str(k.state),
        "created_at": k.created_at,
        "activated_at": k.activated_at,
        "retiring_at": k.retiring_at,
        "retired_at": k.retired_at,
        "symmetric": k.symmetric,
        "sealed": _seal(aead, _material_bytes(k.material), _aad(k)),
    }


def seal_keyring(ring: KeyRing, master: bytes) -> dict[str, Any]:
    """The ring as a JSON-ready document, every key's material sealed under ``master``."""
    aead = AESGCM(master)
    return {
        "format": _FORMAT,
        "check": _seal(aead, _CHECK, b"check"),
        "keys": [_entry(aead, k) for k in ring],
    }


def write_keyring_doc(doc: dict[str, Any], data_dir: Path) -> Path:
    """Write a sealed document atomically to ``data_dir/keys.json`` (mode 0600)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / KEYRING_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_keyring(ring: KeyRing, data_dir: Path, master: bytes) -> Path:
    """Write the ring atomically to ``data_dir/keys.json`` (mode 0600)."""
    return write_keyring_doc(seal_keyring(ring, master), data_dir)


def _from_entry(aead: AESGCM, e: dict[str, Any]) -> ManagedKey:
    key = ManagedKey(
        kid=e["kid"],
        alg=e["alg"],
        state=KeyState(e["state"]),
        created_at=float(e["created_at"]),
        purpose=KeyPurpose(e["purpose"]),
        activated_at=e.get("activated_at"),
        retiring_at=e.get("retiring_at"),
        retired_at=e.get("retired_at"),
    )
    raw = _open(aead, e["sealed"], _aad(key))
    material: Any = raw if e.get("symmetric") else serialization.load_der_private_key(raw, None)
    # Round-trip through create() to re-check type, size and curve against the alg (R9).
    checked = ManagedKey.create(key.alg, key.created_at, material=material, kid=key.kid)
    return ManagedKey(**{**key.__dict__, "material": checked.material})


def open_keyring(doc: Any, master: bytes, *, source: str = "the key store") -> KeyRing:
    """Decrypt a sealed document; a wrong master key is a MasterKeyError, anything else
    wrong a KeyStoreError naming ``source`` (never the document's content)."""
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise KeyStoreError(f"key store {source} has an unknown format")
    aead = AESGCM(master)
    try:
        _open(aead, doc["check"], b"check")
    except (InvalidTag, KeyError, ValueError, TypeError, binascii.Error):
        raise MasterKeyError("the master key does not open this key store") from None
    try:
        return KeyRing(_from_entry(aead, e) for e in doc["keys"])
    except InvalidTag:
        raise KeyStoreError(f"key store {source} was tampered with") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyStoreError(f"key store {source} is corrupt") from exc


def read_keyring_doc(data_dir: Path) -> Any:
    """The sealed document in ``data_dir/keys.json``, parsed but not opened."""
    path = data_dir / KEYRING_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyStoreError(f"no key store at {path}; run 'tokenward keys generate'") from None
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"key store {path} is unreadable") from exc


def load_keyring(data_dir: Path, master: bytes) -> KeyRing:
    """Read and decrypt ``data_dir/keys.json``; a wrong master key is a MasterKeyError."""
    return open_keyring(read_keyring_doc(data_dir), master, source=str(data_dir / KEYRING_FILE))
