"""Keys to and from JWK (RFC 7517) and PEM, RFC 7638 thumbprints — through joserfc.

Import is strict: every key ends up bound to exactly one algorithm (R7), of the right
type and size (R9); ``use: enc`` keys never become verification keys (R24); a set that
mixes symmetric and asymmetric keys or repeats a kid is refused (R23).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tokenward.errors import InvalidKey, JWKSError
from tokenward.jose.algorithms import Algorithm, check_key, get_algorithm
from tokenward.jose.jws import KID_PATTERN, VerifyKey

__all__ = [
    "import_jwk",
    "import_jwks",
    "is_signature_key",
    "load_pem",
    "private_to_pem",
    "public_jwk",
    "public_key_of",
    "thumbprint",
]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
_DEFAULT_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"}
_KEY_CLASSES: Mapping[str, Any] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey, "oct": OctKey}


def public_key_of(material: Any) -> Any:
    """The public half of a private key; HMAC secrets are returned unchanged."""
    if isinstance(material, bytes):
        return material
    return material.public_key()


def _joserfc_key(material: Any) -> Any:
    if isinstance(material, bytes):
        return OctKey.import_key(material)
    if isinstance(material, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RSAKey.import_key(material)
    if isinstance(material, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECKey.import_key(material)
    if isinstance(material, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return OKPKey.import_key(material)
    raise InvalidKey(f"unsupported key type {type(material).__name__}")


def thumbprint(material: Any) -> str:
    """RFC 7638 SHA-256 thumbprint of the (public part of the) key."""
    return str(_joserfc_key(public_key_of(material)).thumbprint())


def public_jwk(material: Any, alg: str, kid: str) -> dict[str, Any]:
    """The public JWK for publication: ``use: sig``, ``alg`` and ``kid`` set (RFC 7517 §4)."""
    if isinstance(material, bytes):
        raise InvalidKey("symmetric keys are never published")
    jwk: dict[str, Any] = dict(_joserfc_key(public_key_of(material)).as_dict(private=False))
    jwk.update(use="sig", alg=alg, kid=kid)
    return jwk


def _alg_for(jwk: Mapping[str, Any], default_rsa_alg: str) -> str:
    alg = jwk.get("alg")
    if alg is not None:
        if not isinstance(alg, str):
            raise JWKSError("JWK alg must be a string")
        return alg
    kty = jwk.get("kty")
    if kty == "RSA":
        return default_rsa_alg  # RFC 9068 §4: RS256 is the one every party supports
    crv = jwk.get("crv")
    if isinstance(crv, str) and crv in _DEFAULT_ALG:
        return _DEFAULT_ALG[crv]
    raise JWKSError(f"JWK of type {str(kty)[:10]!r} has no alg and none can be inferred")


def is_signature_key(jwk: Mapping[str, Any]) -> bool:
    """R24, RFC 7517 §4.2–4.3: usable for verification unless ``use`` or ``key_ops`` say not."""
    if jwk.get("use", "sig") != "sig":
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def import_jwk(jwk: Mapping[str, Any], *, default_rsa_alg: str = "RS256") -> VerifyKey:
    """One JWK -> a VerifyKey bound to one algorithm. Raises JWKSError."""
    if not isinstance(jwk, Mapping):
        raise JWKSError("JWK must be an object")
    if not is_signature_key(jwk):
        raise JWKSError("JWK is not a signature-verification key (use / key_ops)")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.match(kid):
        raise JWKSError("every JWK needs a kid of the allowed form")
    kty = jwk.get("kty")
    if kty != "oct" and _PRIVATE_MEMBERS & jwk.keys():
        raise JWKSError(f"JWK {kid!r} carries private key material")
    try:
        alg = get_algorithm(_alg_for(jwk, default_rsa_alg))
    except InvalidKey as exc:
        raise JWKSError(f"JWK {kid!r}: {exc.detail}") from None
    if alg.kty != kty:
        raise JWKSError(f"JWK {kid!r}: alg {alg.name} does not fit kty {str(kty)[:10]!r}")
    return VerifyKey(kid, alg, _material_from_jwk(jwk, alg, kid))


def _material_from_jwk(jwk: Mapping[str, Any], alg: Algorithm, kid: str) -> Any:
    try:
        key = _KEY_CLASSES[alg.kty].import_key(dict(jwk))
        material = key.raw_value if alg.kty == "oct" else key.public_key
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise JWKSError(f"JWK {kid!r} is not a valid {alg.kty} key") from exc
    try:
        check_key(alg, material, private=False)
    except InvalidKey as exc:
        raise JWKSError(f"JWK {kid!r}: {exc.detail}") from None
    return material


def import_jwks(
    jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, default_rsa_alg: str = "RS256"
) -> dict[str, VerifyKey]:
    """A JWK Set -> {kid: VerifyKey}. ``use: enc`` keys are skipped (R24); R23 enforced."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else list(jwks)
    if not isinstance(keys, list):
        raise JWKSError('a JWK Set is an object with a "keys" array')
    out: dict[str, VerifyKey] = {}
    for jwk in keys:
        if isinstance(jwk, Mapping) and not is_signature_key(jwk):
            continue  # R24: encryption keys never verify
        key = import_jwk(jwk, default_rsa_alg=default_rsa_alg)
        if key.kid in out:
            raise JWKSError(f"kid {key.kid!r} appears twice in the JWK Set")
        out[key.kid] = key
    symmetric = {k.alg.kty == "oct" for k in out.values()}
    if len(symmetric) > 1:
        raise JWKSError("a JWK Set may not mix symmetric and asymmetric keys")
    return out


def load_pem(data: bytes, alg: str, *, password: bytes | None = None) -> Any:
    """A PEM private or public key, checked against ``alg``."""
    algorithm = get_algorithm(alg)
    try:
        if b"PRIVATE KEY" in data:
            key: Any = serialization.load_pem_private_key(data, password=password)
            private = True
        else:
            key = serialization.load_pem_public_key(data)
            private = False
    except (ValueError, TypeError) as exc:
        raise InvalidKey("not a readable PEM key") from exc
    check_key(algorithm, key, private=private)
    return key


def private_to_pem(material: Any) -> bytes:
    """PKCS#8 PEM of a private key (unencrypted: callers encrypt at rest)."""
    if isinstance(material, bytes):
        raise InvalidKey("HMAC secrets have no PEM form")
    return bytes(
        material.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
