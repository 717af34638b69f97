"""Shared fixtures: a frozen clock and key rings, so no test waits for real time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tokenward import FrozenClock, Issuer, KeyRing, Verifier

ISS = "https://issuer.example"
AUD = "https://api.example"
T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture(params=["HS256", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"])
def alg(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_ring() -> Callable[[str], KeyRing]:
    cache: dict[str, KeyRing] = {}

    def make(alg: str) -> KeyRing:
        if alg not in cache:  # RSA generation is slow; one ring per alg per test
            ring = KeyRing()
            ring.generate(alg, T0)
            cache[alg] = ring
        return cache[alg]

    return make


@pytest.fixture
def ring(make_ring: Callable[[str], KeyRing]) -> KeyRing:
    return make_ring("ES256")


@pytest.fixture
def issuer(ring: KeyRing, clock: FrozenClock) -> Issuer:
    return Issuer(ring, issuer=ISS, clock=clock)


@pytest.fixture
def verifier(ring: KeyRing, clock: FrozenClock) -> Verifier:
    return Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
