"""Guard's Principal cache: built once per Authorization header, the token checked every time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tokenward import KeyRing
from tokenward.errors import InvalidToken, MalformedToken
from tokenward.sdk.asgi import raw_authorization
from tokenward.sdk.guard import Guard
from tokenward.sdk.principal import ANY, Principal, requirement

from ...conftest import ISS
from .behaviour import World


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


class CountingFactory:
    """A principal factory that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, claims: Mapping[str, Any]) -> Principal:
        self.calls += 1
        return Principal.from_claims(claims)


def test_one_principal_per_header_while_the_token_holds(world: World) -> None:
    factory = CountingFactory()
    guard = Guard(world.verifier, principal_factory=factory)
    header = f"Bearer {world.token(scope='read')}"
    first = guard.authenticate(header)
    assert first is not None and first.scopes == {"read"}
    assert guard.authenticate(header) is first
    assert guard.authenticate(header.encode("latin-1")) == first  # bytes: its own entry
    assert guard.authenticate(header.encode("latin-1")) is guard.authenticate(header.encode())
    assert factory.calls == 2


def test_a_cached_principal_does_not_outlive_its_token(world: World) -> None:
    guard = Guard(world.verifier)
    header = f"Bearer {world.token(ttl=60)}"
    assert guard.authenticate(header) is not None
    world.clock.advance(120)  # past exp + leeway
    with pytest.raises(InvalidToken) as info:
        guard.authenticate(header)
    assert info.value.code == "expired"


def test_a_cached_principal_does_not_outlive_a_revocation(world: World) -> None:
    guard = Guard(world.verifier)
    header = f"Bearer {world.token('bob')}"
    assert guard.authenticate(header.encode()) is not None
    world.verifier.revocation.set_token_version(ISS, "bob", 5)  # tv 0 < 5: revoked
    with pytest.raises(InvalidToken) as info:
        guard.authenticate(header.encode())
    assert info.value.code == "revoked"


def test_cached_claims_are_read_only(world: World) -> None:
    guard = Guard(world.verifier)
    who = guard.authenticate(f"Bearer {world.token()}")
    assert who is not None and who.claims["sub"] == "alice"
    with pytest.raises(TypeError):
        who.claims["sub"] = "mallory"  # type: ignore[index]


def test_the_cache_is_bounded_and_can_be_off(world: World) -> None:
    factory = CountingFactory()
    guard = Guard(world.verifier, principal_factory=factory, principal_cache_size=2)
    headers = [f"Bearer {world.token(f'user{i}')}" for i in range(3)]
    for header in headers:
        guard.authenticate(header)
    guard.authenticate(headers[2])  # still cached
    assert factory.calls == 3
    guard.authenticate(headers[0])  # evicted: the oldest went when the third came
    assert factory.calls == 4
    off = CountingFactory()
    uncached = Guard(world.verifier, principal_factory=off, principal_cache_size=0)
    for _ in range(3):
        uncached.authenticate(headers[1])
    assert off.calls == 3


@pytest.mark.parametrize("header", [b"Bearer a b", b"Bearer \xe9t\xe9", b"Bearer "])
def test_bytes_headers_are_refused_like_text(world: World, header: bytes) -> None:
    guard = Guard(world.verifier)
    with pytest.raises(MalformedToken):
        guard.authenticate(header)
    with pytest.raises(MalformedToken):
        guard.authenticate(header.decode("latin-1"))


def test_no_bearer_credentials_as_bytes(world: World) -> None:
    guard = Guard(world.verifier)
    assert guard.authenticate(b"Basic dXNlcjpwdw==") is None
    assert guard.authenticate(b"") is None


def test_raw_authorization_joins_a_repeated_header() -> None:
    scope = {"headers": [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]}
    assert raw_authorization(scope) == b"Bearer a, Bearer b"
    assert raw_authorization({"headers": [(b"host", b"x")]}) is None


def test_an_empty_requirement_is_any() -> None:
    assert requirement() is ANY
    assert requirement(scopes=[]) is ANY
    assert requirement(scopes=["read"]) is not ANY
