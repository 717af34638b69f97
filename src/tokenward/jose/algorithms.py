"""The one table of JWS algorithms (RFC 7518 §3, RFC 8037 §3.1) on ``cryptography``.

Each entry fixes the key type, hash, curve and signature length, so that an algorithm
can only ever be used with the kind of key it was made for (SECURITY.md R7, R9, R10).
There is no ``none`` entry and there never will be (R8).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tokenward.errors import InvalidKey
from tokenward.jose.prepared import BoundSign, BoundVerify, hmac_binders

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "BoundSign",
    "BoundVerify",
    "check_key",
    "curve_of",
    "generate_private",
    "get_algorithm",
    "is_roca_weak",
]

SignFn = Callable[[Any, bytes], bytes]
VerifyFn = Callable[[Any, bytes, bytes], bool]

MIN_RSA_BITS = 2048

# Group orders (SEC 2 §2.4, §2.5, §2.6): ECDSA r and s must lie in [1, n-1]. Checking this
# ourselves makes r = s = 0 ("psychic signatures", CVE-2022-21449) fail before OpenSSL.
_ORDERS = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "P-521": int(
        "1" + "F" * 65 + "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One JWS algorithm: what key it takes and how it signs and verifies."""

    name: str
    kty: str  # RFC 7517 §6.1 key type: oct, RSA, EC, OKP
    hash_size: int  # bytes; also the minimum HMAC secret length (R9)
    sig_size: int | None  # fixed signature length; None for RSA (= modulus length)
    curve: str | None
    sign: SignFn
    verify: VerifyFn
    # Per-key preparation, done once when a key is loaded (hot paths call the result).
    bind_sign: Callable[[Any], BoundSign] | None = None
    bind_verify: Callable[[Any], BoundVerify] | None = None

    def signer(self, key: Any) -> BoundSign:
        """``sign`` with ``key`` bound (for HMAC: the keyed state computed once)."""
        if self.bind_sign is not None:
            return self.bind_sign(key)
        return functools.partial(self.sign, key)

    def verifier(self, key: Any) -> BoundVerify:
        """``verify`` with ``key`` bound (for HMAC: the keyed state computed once)."""
        if self.bind_verify is not None:
            return self.bind_verify(key)
        return functools.partial(self.verify, key)


def _hmac(hash_cls: type[hashes.HashAlgorithm]) -> Algorithm:
    digest, size = hash_cls().name, hash_cls().digest_size

    def sign(key: bytes, data: bytes) -> bytes:
        return hmac.digest(key, data, digest)

    def verify(key: bytes, data: bytes, sig: bytes) -> bool:
        # R11: constant-time comparison.
        return hmac.compare_digest(hmac.digest(key, data, digest), sig)

    bind_sign, bind_verify = hmac_binders(hash_cls, sign, verify)  # the keyed state, once
    return Algorithm(f"HS{size * 8}", "oct", size, size, None, sign, verify, bind_sign, bind_verify)


def _rsa(name: str, hash_cls: type[hashes.HashAlgorithm], pss: bool) -> Algorithm:
    h = hash_cls()
    # RFC 7518 §3.5: the PSS salt is as long as the hash output.
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if pss else padding.PKCS1v15()
    )

    def sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        return key.sign(data, pad, h)

    def verify(key: rsa.RSAPublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != (key.key_size + 7) // 8:  # R10: exactly the modulus length
            return False
        try:
            key.verify(sig, data, pad, h)
        except InvalidSignature:
            return False
        return True

    return Algorithm(name, "RSA", h.digest_size, None, None, sign, verify)


def _ecdsa(name: str, hash_cls: type[hashes.HashAlgorithm], curve: str, size: int) -> Algorithm:
    scheme = ec.ECDSA(hash_cls())
    order = _ORDERS[curve]

    def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
        # RFC 7518 §3.4: the JWS signature is raw R || S, each left-padded to the curve size.
        r, s = decode_dss_signature(key.sign(data, scheme))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def verify(key: ec.EllipticCurvePublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != 2 * size:  # R10: no DER, no padding, no truncation
            return False
        r = int.from_bytes(sig[:size], "big")
        s = int.from_bytes(sig[size:], "big")
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            key.verify(encode_dss_signature(r, s), data, scheme)
        except InvalidSignature:
            return False
        return True

    return Algorithm(name, "EC", hash_cls().digest_size, 2 * size, curve, sign, verify)


def _eddsa() -> Algorithm:
    def sign(key: ed25519.Ed25519PrivateKey, data: bytes) -> bytes:
        return key.sign(data)

    def verify(key: ed25519.Ed25519PublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != 64:
            return False
        try:
            key.verify(sig, data)
        except InvalidSignature:
            return False
        return True

    # RFC 8037 §3.1; only Ed25519 is offered (Ed448 has no interop demand).
    return Algorithm("EdDSA", "OKP", 64, 64, "Ed25519", sign, verify)


ALGORITHMS: Mapping[str, Algorithm] = {
    a.name: a
    for a in (
        _hmac(hashes.SHA256),
        _hmac(hashes.SHA384),
        _hmac(hashes.SHA512),
        _rsa("RS256", hashes.SHA256, False),
        _rsa("RS384", hashes.SHA384, False),
        _rsa("RS512", hashes.SHA512, False),
        _rsa("PS256", hashes.SHA256, True),
        _rsa("PS384", hashes.SHA384, True),
        _rsa("PS512", hashes.SHA512, True),
        _ecdsa("ES256", hashes.SHA256, "P-256", 32),
        _ecdsa("ES384", hashes.SHA384, "P-384", 48),
        _ecdsa("ES512", hashes.SHA512, "P-521", 66),
        _eddsa(),
    )
}


def get_algorithm(name: str) -> Algorithm:
    """Return the table entry for ``name`` (exact, case-sensitive), or raise InvalidKey."""
    alg = ALGORITHMS.get(name)
    if alg is None:
        raise InvalidKey(f"unsupported algorithm {name[:20]!r}")
    return alg


def _curve_name(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str | None:
    for name, cls in _CURVES.items():
        if isinstance(key.curve, cls):
            return name
    return None


def check_key(alg: Algorithm, key: object, *, private: bool) -> None:
    """Raise InvalidKey unless ``key`` is the right kind of key for ``alg`` (R9)."""
    if alg.kty == "oct":
        if not isinstance(key, bytes) or len(key) < alg.hash_size:
            raise InvalidKey(f"{alg.name} needs a secret of at least {alg.hash_size} bytes")
        if _looks_like_public_key(key):  # CVE-2022-29217: a public key is no HMAC secret
            raise InvalidKey("an HMAC secret must be random bytes, not a public key")
        return
    want: dict[str, tuple[type, type]] = {
        "RSA": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
        "EC": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
        "OKP": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
    }
    cls = want[alg.kty][0 if private else 1]
    if not isinstance(key, cls):
        kind = "private" if private else "public"
        raise InvalidKey(f"{alg.name} needs an {alg.kty} {kind} key, got {type(key).__name__}")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        if is_roca_weak(
            key.public_numbers().n
            if isinstance(key, rsa.RSAPublicKey)
            else key.public_key().public_numbers().n
        ):
            raise InvalidKey("RSA key has the ROCA weakness (CVE-2017-15361)")
    if alg.kty == "EC" and curve_of(key) != alg.curve:
        raise InvalidKey(f"{alg.name} needs curve {alg.curve}")


# ROCA (CVE-2017-15361, Nemec et al., CCS 2017): moduli from the flawed Infineon generator
# have the form k*M + (65537^a mod M), so N mod p lies in the subgroup generated by 65537
# for every small prime p dividing M. A random modulus passes all these checks with
# negligible probability; the fingerprint costs ~40 modular reductions, once per key import.
_ROCA_PRIMES = [p for p in range(3, 168) if all(p % d for d in range(2, int(p**0.5) + 1))]
_ROCA_SUBGROUPS = {p: frozenset(pow(65537, k, p) for k in range(p)) for p in _ROCA_PRIMES}


def is_roca_weak(n: int) -> bool:
    return all(n % p in group for p, group in _ROCA_SUBGROUPS.items())


_KEY_TEXT_MARKERS = (b"-----BEGIN", b"ssh-", b"ecdsa-sha2-", b'"kty"')


def _looks_like_public_key(secret: bytes) -> bool:
    """PEM, OpenSSH, JWK JSON or DER public key bytes (R9: key types never mix)."""
    if any(marker in secret for marker in _KEY_TEXT_MARKERS):
        return True
    try:
        serialization.load_der_public_key(secret)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def curve_of(key: object) -> str | None:
    """The JOSE curve name of an EC key, or None."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return _curve_name(key)
    return None


def generate_private(alg: Algorithm, rsa_bits: int = 3072) -> Any:
    """Fresh key material for ``alg``: random HMAC secret or a private key object."""
    if alg.kty == "oct":
        # R9: at least the hash length; we use twice that for margin.
        return secrets.token_bytes(max(alg.hash_size, 32) * 2)
    if alg.kty == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=max(rsa_bits, MIN_RSA_BITS))
    if alg.kty == "EC":
        assert alg.curve is not None
        return ec.generate_private_key(_CURVES[alg.curve]())
    return ed25519.Ed25519PrivateKey.generate()
