"""Hand-built JWS tokens for the security suite: every byte is under the test's control.

Headers and payloads are serialized here (dicts compactly, or taken as raw bytes) and
signed with ``cryptography`` directly — never through tokenward — so a test can build
any variant the library would never emit: padded base64, duplicate members, DER or
zero-padded ECDSA, HMACs keyed with a public key, signatures over re-encoded bytes.

Key material is generated once per test session (RSA is slow) and is read-only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tests.conftest import AUD, ISS, T0
from tokenward import FrozenClock, InvalidToken, Issuer, KeyRing, ManagedKey, Verifier

__all__ = [
    "ALGS",
    "AUD",
    "DROP",
    "EC_SIZE",
    "ISS",
    "ORDERS",
    "T0",
    "Keyed",
    "b64",
    "claims",
    "der_sig",
    "ec_parts",
    "ec_raw",
    "jbytes",
    "keyed",
    "public_encodings",
    "rejects",
    "segments",
    "sign",
    "unb64",
    "with_sig",
]

ALGS = ("HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}
# Group orders of P-256, P-384, P-521 (SEC 2 / FIPS 186-4 D.1.2); test_rules checks them
# against OpenSSL (n - 1 is a valid private scalar, n is not).
ORDERS = {
    "ES256": int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16),
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "ES512": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


class _Drop:
    def __repr__(self) -> str:  # stable test ids (pytest-xdist compares them across workers)
        return "DROP"


DROP: Any = _Drop()  # claims(exp=DROP) / header(kid=DROP): leave the member out


# -- encoding ----------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def jbytes(obj: Any) -> bytes:
    """Compact JSON, exactly as a careful issuer would write it."""
    return json.dumps(obj, separators=(",", ":")).encode()


def segments(token: str) -> list[str]:
    return token.split(".")


def with_sig(token: str, sig: bytes) -> str:
    """The same header and payload with another (raw) signature."""
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64(sig)}"


# -- signing -----------------------------------------------------------------------------
def ec_raw(r: int, s: int, size: int) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ec_parts(sig: bytes) -> tuple[int, int]:
    half = len(sig) // 2
    return int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")


def der_sig(raw: bytes) -> bytes:
    """The DER (ASN.1) form of a raw R||S signature — what JOSE forbids (RFC 7518 §3.4)."""
    return encode_dss_signature(*ec_parts(raw))


def sign(alg: str, key: Any, data: bytes) -> bytes:
    """Sign ``data`` as JWS ``alg`` would, with ``cryptography`` directly."""
    bits = alg[2:]
    if alg.startswith("HS"):
        return hmac.new(key, data, getattr(hashlib, f"sha{bits}")).digest()
    if alg.startswith("RS"):
        return bytes(key.sign(data, padding.PKCS1v15(), _HASHES[bits]()))
    if alg.startswith("PS"):
        h = _HASHES[bits]()
        return bytes(key.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h))
    if alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASHES[bits]())))
        return ec_raw(r, s, (key.curve.key_size + 7) // 8)
    if alg == "EdDSA":
        return bytes(key.sign(data))
    raise ValueError(f"cannot sign {alg!r}")


def new_private(alg: str) -> Any:
    if alg.startswith("HS"):
        return secrets.token_bytes(64)
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg in _CURVES:
        return ec.generate_private_key(_CURVES[alg]())
    return ed25519.Ed25519PrivateKey.generate()


def claims(now: float = T0, ttl: int = 300, **over: Any) -> dict[str, Any]:
    """A complete RFC 9068 payload; ``name=DROP`` removes a claim."""
    out: dict[str, Any] = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "client_id": "c1",
        "iat": int(now),
        "exp": int(now) + ttl,
        "jti": secrets.token_urlsafe(16),
        "scope": "read",
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not DROP}


@dataclass(frozen=True)
class Keyed:
    """One algorithm's key ring plus helpers to forge and verify tokens with it."""

    alg: str
    ring: KeyRing

    @property
    def kid(self) -> str:
        return self.ring.signing_key().kid

    @property
    def private(self) -> Any:
        return self.ring.signing_key().material

    def header(self, updates: Mapping[str, Any] | None = None, /, **over: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}
        out.update(updates or {})
        out.update(over)
        return {k: v for k, v in out.items() if v is not DROP}

    def token(
        self,
        header: Mapping[str, Any] | bytes | None = None,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        sig: bytes | None = None,
        alg: str | None = None,
        key: Any = None,
    ) -> str:
        """A compact JWS; signed with this ring's key under ``alg`` unless ``sig`` is given."""
        hdr = self.header() if header is None else header
        h = b64(hdr if isinstance(hdr, bytes) else jbytes(hdr))
        body = claims() if payload is None else payload
        p = b64(body if isinstance(body, bytes) else jbytes(body))
        if sig is None:
            key = self.private if key is None else key
            sig = sign(alg or self.alg, key, f"{h}.{p}".encode())
        return f"{h}.{p}.{b64(sig)}"

    def verifier(self, clock: FrozenClock, **kw: Any) -> Verifier:
        kw.setdefault("issuer", ISS)
        kw.setdefault("audience", AUD)
        return Verifier(self.ring, clock=clock, **kw)

    def issue(self, clock: FrozenClock, **kw: Any) -> str:
        """A token from the library's own Issuer (the reference for 'legit')."""
        kw.setdefault("client_id", "c1")
        kw.setdefault("scope", "read")
        return Issuer(self.ring, issuer=ISS, clock=clock).issue("alice", AUD, **kw)


@cache
def keyed(alg: str) -> Keyed:
    ring = KeyRing()
    ring.add(ManagedKey.create(alg, T0, material=new_private(alg)))
    return Keyed(alg, ring)


def public_encodings(alg: str) -> dict[str, bytes]:
    """Every byte form of ``alg``'s public key an attacker might try as an HMAC secret."""
    pub = keyed(alg).private.public_key()
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    out = {
        "pem": pub.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo),
        "der": pub.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo),
        "openssh": pub.public_bytes(enc.OpenSSH, fmt.OpenSSH),
    }
    out["pem-no-newline"] = out["pem"].rstrip(b"\n")
    if alg[:2] in ("RS", "PS"):
        out["pem-pkcs1"] = pub.public_bytes(enc.PEM, fmt.PKCS1)
        out["der-pkcs1"] = pub.public_bytes(enc.DER, fmt.PKCS1)
    elif alg in _CURVES:
        out["x962-point"] = pub.public_bytes(enc.X962, fmt.UncompressedPoint)
    else:
        out["raw"] = pub.public_bytes(enc.Raw, fmt.Raw)
    jwk = keyed(alg).ring.jwks()["keys"][0]
    out["jwk-json"] = json.dumps(jwk).encode()
    out["jwk-json-compact"] = jbytes(jwk)
    out["jwks-json"] = json.dumps({"keys": [jwk]}).encode()
    return out


def rejects(verifier: Verifier, token: Any, code: str | None = None) -> InvalidToken:
    """Assert ``verifier`` rejects ``token`` with an InvalidToken (of ``code``)."""
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    err = info.value
    assert err.error == "invalid_token"
    assert err.status == 401
    if code is not None:
        assert err.code == code, f"expected {code}, got {err.code}: {err.detail}"
    return err
