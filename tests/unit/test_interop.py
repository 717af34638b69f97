"""Interop both ways with PyJWT and joserfc for every algorithm we issue.

tokenward -> PyJWT / joserfc: tokens from our Issuer verify with the peers, algorithms pinned,
``iss`` and ``aud`` checked, keys taken from our published JWKS (or the shared HMAC secret).
PyJWT / joserfc -> tokenward: RFC 9068 tokens (``typ: at+jwt``, ``kid``) made by the peers
verify with our Verifier, given ``ring.jwks()`` or a JWK Set / StaticKeys built from the peer's
own keys (for HS256 an ``oct`` set, since symmetric keys are never published).

PyJWT has no injectable clock, so the frozen clock here stands at the (whole-second) time the
module was imported rather than at ``T0``; nothing sleeps.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from tokenward import (
    FrozenClock,
    Issuer,
    KeyRing,
    MalformedToken,
    StaticKeys,
    Verifier,
    WrongTokenType,
)
from tokenward.jose.jws import b64encode

from ..conftest import AUD, ISS

ALGS = ["HS256", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"]
NOW = float(int(time.time()))  # frozen: see the module docstring
RFC9068 = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")

# joserfc marks "EdDSA" deprecated in favour of RFC 9864's "Ed25519"; we still speak EdDSA.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


@pytest.fixture(scope="module")
def rings() -> Callable[[str], KeyRing]:
    """One ring per alg for the whole module (RSA key generation is slow)."""
    cache: dict[str, KeyRing] = {}

    def get(alg: str) -> KeyRing:
        if alg not in cache:
            ring = KeyRing()
            ring.generate(alg, NOW)
            cache[alg] = ring
        return cache[alg]

    return get


def _as_any(value: object) -> Any:
    return value


def _clock() -> FrozenClock:
    return FrozenClock(NOW)


def _oct_jwks(secret: bytes, kid: str = "k1", alg: str = "HS256") -> dict[str, Any]:
    return {"keys": [{"kty": "oct", "k": b64encode(secret).decode(), "alg": alg, "kid": kid}]}


def _verifier(keys: Any) -> Verifier:
    return Verifier(keys, issuer=ISS, audience=AUD, clock=_clock())


def _rfc9068_claims(sub: str = "alice") -> dict[str, Any]:
    now = int(NOW)
    return {
        "iss": ISS,
        "sub": sub,
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
        "client_id": "peer-client",
        "scope": "read write",
    }


def _issue(ring: KeyRing) -> str:
    return Issuer(ring, issuer=ISS, clock=_clock()).issue(
        "alice", AUD, scope="read", client_id="web"
    )


def _assert_ours(claims: dict[str, Any], sub: str = "alice") -> None:
    assert claims["iss"] == ISS and claims["sub"] == sub and claims["aud"] == AUD
    assert set(RFC9068) <= claims.keys()


# -- tokenward -> peers -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_tokenward_token_verifies_with_pyjwt(alg: str, rings: Callable[[str], KeyRing]) -> None:
    ring = rings(alg)
    token = _issue(ring)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": ring.signing_key().kid, "typ": "at+jwt"}
    if alg == "HS256":
        key: Any = ring.signing_key().material
    else:  # the public key as a relying party gets it: from our JWKS, by kid
        key = pyjwt.PyJWKSet.from_dict(ring.jwks())[header["kid"]].key
    claims = pyjwt.decode(
        token,
        key,
        algorithms=[alg],
        audience=AUD,
        issuer=ISS,
        options={"require": list(RFC9068)},
    )
    _assert_ours(claims)
    assert claims["scope"] == "read" and claims["client_id"] == "web"
    assert claims["exp"] - claims["iat"] == 900


@pytest.mark.parametrize("alg", ALGS)
def test_tokenward_token_verifies_with_joserfc(alg: str, rings: Callable[[str], KeyRing]) -> None:
    ring = rings(alg)
    token = _issue(ring)
    key: Any
    if alg == "HS256":
        key = OctKey.import_key(ring.signing_key().material)
    else:
        key = KeySet.import_key_set(_as_any(ring.jwks()))
    decoded = jose_jwt.decode(token, key, algorithms=[alg])
    assert decoded.header == {"alg": alg, "kid": ring.signing_key().kid, "typ": "at+jwt"}
    registry = jose_jwt.JWTClaimsRegistry(
        now=int(NOW),
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )
    registry.validate(decoded.claims)  # raises on any failure
    _assert_ours(decoded.claims)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_peers_reject_tokenward_token_under_another_alg_or_tampered(
    alg: str, rings: Callable[[str], KeyRing]
) -> None:
    """Sanity of the harness: the peers really do check something."""
    ring = rings(alg)
    token = _issue(ring)
    with pytest.raises(JoseError):
        jose_jwt.decode(token, KeySet.import_key_set(_as_any(ring.jwks())), algorithms=["RS256"])
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(pyjwt.InvalidTokenError):
        pyjwt.decode(
            tampered,
            pyjwt.PyJWKSet.from_dict(ring.jwks())[ring.signing_key().kid].key,
            algorithms=[alg],
            audience=AUD,
            issuer=ISS,
        )


# -- PyJWT -> tokenward -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_token_verifies_with_tokenward(alg: str, rings: Callable[[str], KeyRing]) -> None:
    ring = rings(alg)
    signing = ring.signing_key()
    claims = _rfc9068_claims("bob")
    token = pyjwt.encode(
        claims, signing.material, algorithm=alg, headers={"kid": signing.kid, "typ": "at+jwt"}
    )
    if alg == "HS256":
        jwks = _oct_jwks(signing.material, kid=signing.kid)
        assert ring.jwks() == {"keys": []}  # symmetric keys are never published
    else:
        jwks = ring.jwks()
    for keys in (jwks, StaticKeys.from_jwks(jwks), ring):
        assert _verifier(keys).verify(token) == claims


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
def test_pyjwt_default_typ_and_missing_kid_are_refused(
    alg: str, rings: Callable[[str], KeyRing]
) -> None:
    """R17 / R6 across libraries: PyJWT's defaults (``typ: JWT``, no kid) are not access tokens."""
    ring = rings(alg)
    signing = ring.signing_key()
    keys = _oct_jwks(signing.material, kid=signing.kid) if alg == "HS256" else ring.jwks()
    verifier = _verifier(keys)
    claims = _rfc9068_claims()
    plain = pyjwt.encode(claims, signing.material, algorithm=alg, headers={"kid": signing.kid})
    assert pyjwt.get_unverified_header(plain)["typ"] == "JWT"
    with pytest.raises(WrongTokenType):
        verifier.verify(plain)
    no_kid = pyjwt.encode(claims, signing.material, algorithm=alg, headers={"typ": "at+jwt"})
    with pytest.raises(MalformedToken):
        verifier.verify(no_kid)


# -- joserfc -> tokenward -----------------------------------------------------------------


@pytest.fixture(scope="module")
def jose_keys() -> Callable[[str], Any]:
    """joserfc's own private keys, one per alg (RSA once per module)."""
    cache: dict[str, Any] = {}
    makers: dict[str, Callable[[], Any]] = {
        "HS256": lambda: OctKey.generate_key(256),
        "RS256": lambda: RSAKey.generate_key(2048),
        "PS256": lambda: RSAKey.generate_key(2048),
        "ES256": lambda: ECKey.generate_key("P-256"),
        "ES384": lambda: ECKey.generate_key("P-384"),
        "ES512": lambda: ECKey.generate_key("P-521"),
        "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    }

    def get(alg: str) -> Any:
        if alg not in cache:
            cache[alg] = makers[alg]()
        return cache[alg]

    return get


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_token_verifies_with_tokenward(alg: str, jose_keys: Callable[[str], Any]) -> None:
    key = jose_keys(alg)
    kid = f"jose-{alg.lower()}"
    claims = _rfc9068_claims("carol")
    token = jose_jwt.encode(
        {"alg": alg, "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=[alg]
    )
    if alg == "HS256":
        jwk = {"kty": "oct", "k": key.as_dict(private=True)["k"]}
    else:
        jwk = dict(key.as_dict(private=False))
    jwk.update(alg=alg, kid=kid)
    jwks = {"keys": [jwk]}
    for keys in (jwks, StaticKeys.from_jwks(jwks)):
        assert _verifier(keys).verify(token) == claims


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_joserfc_token_with_application_at_jwt_typ(
    alg: str, jose_keys: Callable[[str], Any]
) -> None:
    """RFC 9068 §4: ``application/at+jwt`` is accepted too (R17)."""
    key = jose_keys(alg)
    token = jose_jwt.encode(
        {"alg": alg, "kid": "k1", "typ": "application/at+jwt"},
        _rfc9068_claims(),
        key,
        algorithms=[alg],
    )
    jwks = {"keys": [{**key.as_dict(private=False), "alg": alg, "kid": "k1"}]}
    assert _verifier(jwks).verify(token)["sub"] == "alice"
