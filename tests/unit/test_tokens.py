"""Issuer and Verifier: RFC 9068 shape, reserved claims, the verified-token cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tokenward import (
    ExpiredToken,
    FrozenClock,
    Issuer,
    KeyNotFound,
    KeyPurpose,
    KeyRing,
    RevokedToken,
    StaticKeys,
    Verifier,
    WrongTokenType,
)
from tokenward.errors import ReservedClaim

from ..conftest import AUD, ISS, T0


def _part(token: str, i: int) -> dict[str, Any]:
    seg = token.split(".")[i]
    return dict(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))))


def test_issue_makes_an_rfc9068_token(issuer: Issuer, ring: KeyRing) -> None:
    token = issuer.issue("alice", AUD, scope=["read", "write"], client_id="web", ttl=120)
    header, claims = _part(token, 0), _part(token, 1)
    assert header == {"alg": "ES256", "kid": ring.signing_key().kid, "typ": "at+jwt"}
    assert claims["iss"] == ISS and claims["sub"] == "alice" and claims["aud"] == AUD
    assert claims["iat"] == int(T0) and claims["exp"] == int(T0) + 120
    assert claims["client_id"] == "web" and claims["scope"] == "read write"
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) >= 16  # >= 128 bits


def test_jti_is_unique(issuer: Issuer) -> None:
    jtis = {_part(issuer.issue("a", AUD), 1)["jti"] for _ in range(200)}
    assert len(jtis) == 200


def test_every_alg_roundtrips(make_ring: Any, alg: str, clock: FrozenClock) -> None:
    ring = make_ring(alg)
    token = Issuer(ring, issuer=ISS, clock=clock).issue("alice", AUD, token_version=3)
    claims = Verifier(ring, issuer=ISS, audience=AUD, clock=clock).verify(token)
    assert claims["sub"] == "alice" and claims["tv"] == 3


@pytest.mark.parametrize(
    "name", ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "tv"]
)
def test_reserved_claims_cannot_be_overridden(issuer: Issuer, name: str) -> None:
    with pytest.raises(ReservedClaim, match=name):
        issuer.issue("alice", AUD, claims={name: "evil"})


def test_extra_claims_are_carried(issuer: Issuer, verifier: Verifier) -> None:
    token = issuer.issue("alice", AUD, claims={"roles": ["admin"], "tenant": "t1"})
    assert verifier.verify(token)["roles"] == ["admin"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": 10**6}, "ttl"),
        ({"subject": ""}, "subject"),
        ({"audience": ""}, "audience"),
    ],
)
def test_issue_rejects_bad_arguments(issuer: Issuer, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"subject": "alice", "audience": AUD} | kwargs
    subject, audience = args.pop("subject"), args.pop("audience")
    with pytest.raises(ValueError, match=match):
        issuer.issue(subject, audience, **args)


def test_refresh_jwt_has_its_own_typ_key_and_audience(ring: KeyRing, clock: FrozenClock) -> None:
    ring.generate("ES256", T0, purpose=KeyPurpose.REFRESH)
    issuer = Issuer(ring, issuer=ISS, clock=clock)
    token = issuer.issue_refresh("alice")
    header, claims = _part(token, 0), _part(token, 1)
    assert header["typ"] == "rt+jwt" and header["kid"] == ring.signing_key(KeyPurpose.REFRESH).kid
    assert claims["aud"] == ISS
    with pytest.raises((WrongTokenType, KeyNotFound)):
        Verifier(ring, issuer=ISS, audience=ISS, clock=clock).verify(token)
    keys = StaticKeys(ring.verification_keys(KeyPurpose.REFRESH))
    refresh_verifier = Verifier(keys, issuer=ISS, audience=ISS, typ="rt+jwt", clock=clock)
    assert refresh_verifier.verify(token)["sub"] == "alice"


def test_verifier_accepts_a_jwks_dict_a_ring_and_a_key_source(
    issuer: Issuer, ring: KeyRing, clock: FrozenClock
) -> None:
    token = issuer.issue("alice", AUD)
    for source in (ring, ring.jwks(), StaticKeys(ring.verification_keys())):
        assert Verifier(source, issuer=ISS, audience=AUD, clock=clock).verify(token)["sub"]
    with pytest.raises(TypeError):
        Verifier(42, issuer=ISS, audience=AUD)  # type: ignore[arg-type]


# -- the verified-token cache ---------------------------------------------------------------


def test_cache_hit_still_checks_expiry(
    issuer: Issuer, verifier: Verifier, clock: FrozenClock
) -> None:
    token = issuer.issue("alice", AUD, ttl=60)
    verifier.verify(token)
    clock.advance(60 + 30)
    with pytest.raises(ExpiredToken):
        verifier.verify(token)
    with pytest.raises(ExpiredToken):  # and again, now from the cold path
        verifier.verify(token)


def test_cache_hit_still_checks_revocation(issuer: Issuer, verifier: Verifier) -> None:
    token = issuer.issue("alice", AUD)
    jti = verifier.verify(token)["jti"]
    verifier.revocation.deny(jti, T0 + 900)
    with pytest.raises(RevokedToken):
        verifier.verify(token)


def test_cache_hit_checks_the_key_is_still_there(clock: FrozenClock) -> None:
    ring = KeyRing()
    old = ring.generate("ES256", T0)
    issuer = Issuer(ring, issuer=ISS, clock=clock)
    token = issuer.issue("alice", AUD)
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
    verifier.verify(token)
    ring.generate("ES256", T0)  # old key -> retiring: still verifies
    assert verifier.verify(token)["sub"] == "alice"
    ring.replace(k for k in ring if k.kid != old.kid)  # key gone from the set
    with pytest.raises(KeyNotFound):
        verifier.verify(token)


def test_cache_is_bounded(issuer: Issuer, ring: KeyRing, clock: FrozenClock) -> None:
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock, cache_size=10)
    for _ in range(50):
        verifier.verify(issuer.issue("alice", AUD))
    assert len(verifier._cache) == 10


def test_returned_claims_are_a_copy(issuer: Issuer, verifier: Verifier) -> None:
    token = issuer.issue("alice", AUD)
    verifier.verify(token)["sub"] = "mallory"
    assert verifier.verify(token)["sub"] == "alice"


def test_cache_disabled(issuer: Issuer, ring: KeyRing, clock: FrozenClock) -> None:
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    token = issuer.issue("alice", AUD)
    assert verifier.verify(token) == verifier.verify(token)
    assert verifier._cache == {}


def test_revoked_token_version_and_epoch(issuer: Issuer, verifier: Verifier) -> None:
    token = issuer.issue("alice", AUD, token_version=1)
    verifier.verify(token)
    verifier.revocation.set_token_version(ISS, "alice", 2)
    with pytest.raises(RevokedToken):
        verifier.verify(token)
    fresh = issuer.issue("bob", AUD)
    verifier.revocation.set_epoch(T0 + 1)
    with pytest.raises(RevokedToken):
        verifier.verify(fresh)


def test_repr_holds_no_secrets(clock: FrozenClock) -> None:
    ring = KeyRing()
    key = ring.generate("HS256", T0)
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
    assert key.material.hex() not in repr(verifier)
    assert str(key.material) not in repr(verifier)
