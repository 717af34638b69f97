"""SECURITY.md R9: key types are separate objects; HMAC secret length, RSA size, EC curve.

A public key never acts as an HMAC secret — neither through a token's ``alg`` (the classic
RS256 -> HS256 confusion) nor through key import.
"""

from __future__ import annotations

import secrets
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from joserfc.jwk import OKPKey, RSAKey

from tests.security.forge import AUD, ISS, T0, b64, keyed, public_encodings, rejects, unb64
from tokenward import FrozenClock, InvalidKey, JWKSError, ManagedKey, Verifier
from tokenward.jose.algorithms import ALGORITHMS, check_key
from tokenward.jose.jwk import import_jwks, load_pem

ES = keyed("ES256")
# joserfc warns about the weak keys these tests feed it on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")


@pytest.mark.parametrize("hs", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "EdDSA"])
def test_r9_hmac_keyed_with_public_key(clock: FrozenClock, alg: str, hs: str) -> None:
    """CVE-2015-9235 / CVE-2016-10555 / CVE-2022-29217: the public key as HMAC secret."""
    k = keyed(alg)
    verifiers = [k.verifier(clock), Verifier(k.ring.jwks(), issuer=ISS, audience=AUD, clock=clock)]
    for name, secret in public_encodings(alg).items():
        token = k.token(k.header(alg=hs), key=secret, alg=hs)
        for v in verifiers:
            err = rejects(v, token)
            assert err.code == "invalid_algorithm", name


@cache
def _small_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _oct(secret: bytes, alg: str = "HS256", kid: str = "h1") -> dict[str, Any]:
    return {"kty": "oct", "k": b64(secret), "alg": alg, "kid": kid}


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_r9_hmac_secret_at_least_hash_length(alg: str, size: int) -> None:
    assert import_jwks({"keys": [_oct(secrets.token_bytes(size), alg)]})["h1"].alg.name == alg
    ManagedKey.create(alg, T0, material=secrets.token_bytes(size))
    for short in (b"", b"k", secrets.token_bytes(size - 1)):
        with pytest.raises(JWKSError):
            import_jwks({"keys": [_oct(short, alg)]})
        with pytest.raises(InvalidKey):
            ManagedKey.create(alg, T0, material=short)


def test_r9_generated_hmac_secrets_are_long_and_random() -> None:
    a, b = (ManagedKey.create("HS512", T0).material for _ in range(2))
    assert len(a) >= 64 and a != b


def test_r9_rsa_below_2048_bits_refused(clock: FrozenClock) -> None:
    small = _small_rsa()
    with pytest.raises(InvalidKey):
        ManagedKey.create("RS256", T0, material=small)
    pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey):
        load_pem(pem, "RS256")
    jwk = {**RSAKey.import_key(small.public_key()).as_dict(private=False), "kid": "small"}
    for alg in ("RS256", "PS256"):
        with pytest.raises(JWKSError):
            import_jwks({"keys": [{**jwk, "alg": alg}]})
        with pytest.raises(JWKSError):
            Verifier({"keys": [{**jwk, "alg": alg}]}, issuer=ISS, audience=AUD, clock=clock)


@pytest.mark.parametrize(
    ("alg", "other"), [("ES256", "ES384"), ("ES384", "ES512"), ("ES512", "ES256")]
)
def test_r9_ec_curve_must_match_alg(alg: str, other: str) -> None:
    with pytest.raises(InvalidKey):
        ManagedKey.create(alg, T0, material=keyed(other).private)
    jwk = {**keyed(other).ring.jwks()["keys"][0], "alg": alg}
    with pytest.raises(JWKSError):
        import_jwks({"keys": [jwk]})


def test_r9_other_curves_refused() -> None:
    with pytest.raises(InvalidKey):
        ManagedKey.create("ES256", T0, material=ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(InvalidKey):
        ManagedKey.create("EdDSA", T0, material=ed448.Ed448PrivateKey.generate())
    ed448_jwk = {**OKPKey.generate_key("Ed448").as_dict(private=False), "kid": "e", "alg": "EdDSA"}
    with pytest.raises(JWKSError):
        import_jwks({"keys": [ed448_jwk]})


def test_r9_ec_point_must_be_on_the_curve() -> None:
    jwk = dict(ES.ring.jwks()["keys"][0])
    y = bytearray(unb64(jwk["y"]))
    y[-1] ^= 1
    with pytest.raises(JWKSError):
        import_jwks({"keys": [{**jwk, "y": b64(bytes(y))}]})


@pytest.mark.parametrize(
    ("source", "alg"),
    [
        ("RS256", "HS256"),
        ("ES256", "HS256"),
        ("EdDSA", "HS512"),
        ("RS256", "ES256"),
        ("ES256", "RS256"),
        ("ES256", "EdDSA"),
    ],
)
def test_r9_jwk_alg_must_fit_its_kty(source: str, alg: str) -> None:
    jwk = {**keyed(source).ring.jwks()["keys"][0], "alg": alg}
    with pytest.raises(JWKSError):
        import_jwks({"keys": [jwk]})


def test_r9_oct_jwk_cannot_claim_an_asymmetric_alg() -> None:
    for alg in ("RS256", "ES256", "EdDSA"):
        with pytest.raises(JWKSError):
            import_jwks({"keys": [_oct(secrets.token_bytes(64), alg)]})


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_r9_public_key_object_is_not_hmac_material(alg: str) -> None:
    pub = keyed(alg).private.public_key()
    for hs in ("HS256", "HS512"):
        with pytest.raises(InvalidKey):
            check_key(ALGORITHMS[hs], pub, private=False)
        with pytest.raises(InvalidKey):
            ManagedKey.create(hs, T0, material=pub)


@pytest.mark.parametrize(
    ("encoding", "path"),
    [
        ("pem", "create"),
        ("pem-pkcs1", "create"),
        ("pem-no-newline", "create"),
        ("openssh", "create"),
        ("pem", "jwks"),
        ("pem-pkcs1", "jwks"),
        ("pem-no-newline", "jwks"),
        ("openssh", "jwks"),
    ],
)
def test_cve_2022_29217_public_key_text_refused_as_hmac_secret(encoding: str, path: str) -> None:
    """PyJWT refuses PEM and SSH public keys as HMAC secrets; so must we (R9)."""
    text = public_encodings("RS256")[encoding]
    if path == "create":
        with pytest.raises(InvalidKey):
            ManagedKey.create("HS256", T0, material=text)
    else:
        with pytest.raises(JWKSError):
            import_jwks({"keys": [_oct(text)]})
