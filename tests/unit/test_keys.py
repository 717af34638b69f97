"""KeyRing: generation per alg, states, lookup, JWKS export (R9, R23, R24)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tokenward import InvalidKey, KeyPurpose, KeyRing, KeyState, ManagedKey
from tokenward.errors import JWKSError
from tokenward.jose.jwk import import_jwks, thumbprint
from tokenward.keys import check_publishable

from ..conftest import T0


def test_generate_every_alg_gives_a_usable_key(alg: str) -> None:
    ring = KeyRing()
    key = ring.generate(alg, T0)
    assert key.state is KeyState.ACTIVE and key.activated_at == T0
    assert ring.signing_key() is key
    assert ring.get(key.kid) is not None and ring.get(key.kid).alg.name == alg  # type: ignore[union-attr]
    if key.symmetric:  # a hash of the secret would leak in every header: random kid
        assert key.kid != thumbprint(key.material) and len(key.kid) >= 16
    else:
        assert key.kid == thumbprint(key.material)  # RFC 7638 unless given


def test_generated_material_meets_minimums() -> None:
    assert len(ManagedKey.create("HS256", T0).material) >= 32
    assert len(ManagedKey.create("HS512", T0).material) >= 64
    rsa_key = ManagedKey.create("RS256", T0).material
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size >= 2048
    es512 = ManagedKey.create("ES512", T0).material
    assert isinstance(es512, ec.EllipticCurvePrivateKey) and es512.curve.name == "secp521r1"


def test_r9_short_hmac_secret_and_small_rsa_and_wrong_curve_are_refused() -> None:
    with pytest.raises(InvalidKey):
        ManagedKey.create("HS256", T0, material=b"short")
    with pytest.raises(InvalidKey):
        ManagedKey.create("RS256", T0, material=rsa.generate_private_key(65537, 1024))
    with pytest.raises(InvalidKey):
        ManagedKey.create("ES256", T0, material=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(InvalidKey):
        ManagedKey.create("EdDSA", T0, material=ec.generate_private_key(ec.SECP256R1()))


def test_new_active_key_retires_the_previous_one() -> None:
    ring = KeyRing()
    old = ring.generate("ES256", T0)
    new = ring.generate("ES256", T0 + 10)
    states = {k.kid: k.state for k in ring}
    assert states == {old.kid: KeyState.RETIRING, new.kid: KeyState.ACTIVE}
    assert ring.signing_key().kid == new.kid
    assert ring.get(old.kid) is not None  # still verifies


def test_next_key_is_published_but_does_not_sign() -> None:
    ring = KeyRing()
    active = ring.generate("ES256", T0)
    nxt = ring.generate("ES256", T0, state=KeyState.NEXT)
    assert ring.signing_key().kid == active.kid
    assert {j["kid"] for j in ring.jwks()["keys"]} == {active.kid, nxt.kid}


def test_jwks_holds_public_parts_only_with_use_alg_kid() -> None:
    ring = KeyRing()
    for alg in ("RS256", "ES384", "EdDSA"):
        ring.add(ManagedKey.create(alg, T0, state=KeyState.NEXT))
    for jwk in ring.jwks()["keys"]:
        assert jwk["use"] == "sig" and jwk["alg"] and jwk["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & jwk.keys()
    assert set(import_jwks(ring.jwks())) == {k.kid for k in ring}


def test_symmetric_keys_are_never_published() -> None:
    ring = KeyRing()
    ring.generate("HS256", T0)
    assert ring.jwks() == {"keys": []}
    assert ring.signing_key().symmetric


def test_refresh_keys_are_separate_and_unpublished() -> None:
    ring = KeyRing()
    access = ring.generate("ES256", T0)
    refresh = ring.generate("ES256", T0, purpose=KeyPurpose.REFRESH)
    assert ring.signing_key(KeyPurpose.REFRESH).kid == refresh.kid
    assert ring.signing_key().kid == access.kid  # activating the refresh key kept this one
    assert ring.get(refresh.kid) is None  # R24: never verifies an access token
    assert [j["kid"] for j in ring.jwks()["keys"]] == [access.kid]


def test_no_active_key_is_a_clear_error() -> None:
    with pytest.raises(InvalidKey, match="no active access key"):
        KeyRing().signing_key()


def test_duplicate_kid_in_ring_is_refused() -> None:
    key = ManagedKey.create("ES256", T0)
    with pytest.raises(InvalidKey, match="twice"):
        KeyRing([key, key])


@pytest.mark.parametrize("kid", ["../etc/passwd", "a/b", "", "x" * 129, "kid?x=1", " k"])
def test_r6_bad_kids_are_refused_at_creation(kid: str) -> None:
    with pytest.raises(InvalidKey):
        ManagedKey.create("HS256", T0, material=b"k" * 32, kid=kid or "?")


def test_material_never_in_repr() -> None:
    ring = KeyRing()
    key = ring.generate("HS256", T0)
    assert key.material.hex() not in repr(key) + repr(ring) + repr(ring.get(key.kid))
    assert "material" not in repr(key)


def test_r23_check_publishable_refuses_mixed_and_duplicate_sets() -> None:
    hs = ManagedKey.create("HS256", T0).verify_key()
    es = ManagedKey.create("ES256", T0).verify_key()
    with pytest.raises(JWKSError, match="mix"):
        check_publishable([hs, es])
    with pytest.raises(JWKSError, match="twice"):
        check_publishable([es, es])
    check_publishable([es])
