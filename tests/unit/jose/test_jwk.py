"""jwk.py: strict JWK import (R7, R9, R23, R24) and the ROCA fingerprint."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tokenward import KeyRing
from tokenward.errors import JWKSError
from tokenward.jose.algorithms import _ROCA_PRIMES, is_roca_weak
from tokenward.jose.jwk import import_jwk, import_jwks, is_signature_key

from ...conftest import T0


@pytest.fixture(scope="module")
def jwk() -> dict[str, Any]:
    ring = KeyRing()
    ring.generate("ES256", T0)
    return dict(ring.jwks()["keys"][0])


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ({}, True),
        ({"key_ops": ["verify"]}, True),
        ({"key_ops": ["encrypt"]}, False),
        ({"key_ops": "verify"}, False),
        ({"use": "enc"}, False),
    ],
)
def test_r24_use_and_key_ops(jwk: dict[str, Any], extra: dict[str, Any], ok: bool) -> None:
    candidate = {**jwk, **extra}
    assert is_signature_key(candidate) is ok
    assert (candidate["kid"] in import_jwks({"keys": [candidate]})) is ok
    if not ok:
        with pytest.raises(JWKSError):
            import_jwk(candidate)


@pytest.mark.parametrize(
    "change",
    [
        {"alg": "ES384"},
        {"alg": "RS256"},
        {"alg": "none"},
        {"kid": "../x"},
        {"kid": None},
        {"d": "AAAA"},
        {"crv": "P-384"},
        {"x": "AAAA"},
        {"alg": 5},
    ],
)
def test_bad_jwks_are_refused(jwk: dict[str, Any], change: dict[str, Any]) -> None:
    with pytest.raises(JWKSError):
        import_jwk({**jwk, **change})


def test_alg_is_inferred_for_curves_only(jwk: dict[str, Any]) -> None:
    no_alg = {k: v for k, v in jwk.items() if k != "alg"}
    assert import_jwk(no_alg).alg.name == "ES256"
    with pytest.raises(JWKSError):
        import_jwk({"kty": "oct", "k": "A" * 43, "kid": "h"})


def test_roca_fingerprint() -> None:
    modulus = math.prod(_ROCA_PRIMES)
    weak = 12345 * modulus + pow(65537, 4242, modulus)  # the structure of a ROCA modulus
    assert is_roca_weak(weak)
    ring = KeyRing()
    ring.generate("RS256", T0)
    n = ring.get(ring.signing_key().kid).key.public_numbers().n  # type: ignore[union-attr]
    assert not is_roca_weak(n)
