"""KeyRing: signing keys with a life cycle, looked up by kid; JWKS export (R23).

States (see rotation.py for the timing):
  next      published in the JWKS, not yet signing — verifiers learn it before they need it
  active    signs new tokens (one per purpose) and verifies
  retiring  no longer signs; still verifies and stays published until its last token expired
  retired   gone from the JWKS and from verification
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from tokenward.errors import InvalidKey, JWKSError
from tokenward.jose.algorithms import check_key, generate_private, get_algorithm
from tokenward.jose.jwk import public_jwk, public_key_of, thumbprint
from tokenward.jose.jws import KID_PATTERN, VerifyKey

__all__ = ["KeyPurpose", "KeyRing", "KeyState", "ManagedKey"]


class KeyState(enum.StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class KeyPurpose(enum.StrEnum):
    """R24: access and refresh tokens are signed with different keys."""

    ACCESS = "access"
    REFRESH = "refresh"


PUBLISHED = frozenset({KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRING})


@dataclass(frozen=True)
class ManagedKey:
    """One key and its life-cycle timestamps (seconds since the epoch)."""

    kid: str
    alg: str
    state: KeyState
    created_at: float
    purpose: KeyPurpose = KeyPurpose.ACCESS
    activated_at: float | None = None
    retiring_at: float | None = None  # stopped signing
    retired_at: float | None = None  # left the JWKS
    material: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        alg: str,
        now: float,
        *,
        state: KeyState = KeyState.ACTIVE,
        purpose: KeyPurpose = KeyPurpose.ACCESS,
        material: Any = None,
        kid: str | None = None,
    ) -> ManagedKey:
        """A key for ``alg`` — fresh material unless given; kid = RFC 7638 thumbprint."""
        algorithm = get_algorithm(alg)
        if material is None:
            material = generate_private(algorithm)
        check_key(algorithm, material, private=not isinstance(material, bytes))
        # RFC 7638 thumbprint for public keys; a random kid for HMAC secrets, since a hash of
        # the secret would travel in every token header.
        kid = kid or (
            secrets.token_urlsafe(16) if isinstance(material, bytes) else thumbprint(material)
        )
        if not KID_PATTERN.match(kid):
            raise InvalidKey("kid must match [A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
        activated = now if state is KeyState.ACTIVE else None
        return cls(kid, alg, state, now, purpose, activated, None, None, material)

    @property
    def symmetric(self) -> bool:
        return isinstance(self.material, bytes)

    @property
    def published(self) -> bool:
        return self.state in PUBLISHED

    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.kid, get_algorithm(self.alg), public_key_of(self.material))

    def moved(self, state: KeyState, now: float) -> ManagedKey:
        stamp = {
            KeyState.ACTIVE: "activated_at",
            KeyState.RETIRING: "retiring_at",
            KeyState.RETIRED: "retired_at",
        }.get(state)
        changes: dict[str, Any] = {"state": state}
        if stamp:
            changes[stamp] = now
        return replace(self, **changes)


class KeyRing:
    """An ordered set of ManagedKeys; also a KeyLookup (``get(kid)``) for verification."""

    def __init__(self, keys: Iterable[ManagedKey] = ()) -> None:
        self._keys: tuple[ManagedKey, ...] = ()
        self._lookup: dict[str, VerifyKey] = {}
        self._active: dict[KeyPurpose, ManagedKey] = {}
        self.replace(keys)

    # -- contents -----------------------------------------------------------------------
    def replace(self, keys: Iterable[ManagedKey]) -> None:
        keys = tuple(keys)
        kids = [k.kid for k in keys]
        if len(set(kids)) != len(kids):
            raise InvalidKey("a kid appears twice in the key ring")
        self._keys = keys
        # Derived once per change: the signing key per purpose (the first active one).
        self._active = {}
        for k in keys:
            if k.state is KeyState.ACTIVE:
                self._active.setdefault(k.purpose, k)
        self._lookup = {
            k.kid: k.verify_key() for k in keys if k.published and k.purpose is KeyPurpose.ACCESS
        }

    @property
    def keys(self) -> tuple[ManagedKey, ...]:
        return self._keys

    def __iter__(self) -> Iterator[ManagedKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({', '.join(f'{k.kid}:{k.alg}:{k.state}' for k in self._keys)})"

    def add(self, key: ManagedKey) -> ManagedKey:
        if key.state is KeyState.ACTIVE:
            self._keys = tuple(
                k.moved(KeyState.RETIRING, key.created_at)
                if k.state is KeyState.ACTIVE and k.purpose is key.purpose
                else k
                for k in self._keys
            )
        self.replace((*self._keys, key))
        return key

    def generate(
        self,
        alg: str,
        now: float,
        *,
        purpose: KeyPurpose = KeyPurpose.ACCESS,
        state: KeyState = KeyState.ACTIVE,
    ) -> ManagedKey:
        """Generate and add a key; an ACTIVE one retires the previous active key."""
        return self.add(ManagedKey.create(alg, now, state=state, purpose=purpose))

    # -- use ----------------------------------------------------------------------------
    def signing_key(self, purpose: KeyPurpose = KeyPurpose.ACCESS) -> ManagedKey:
        key = self._active.get(purpose)
        if key is None:
            raise InvalidKey(f"no active {purpose} key in the key ring")
        return key

    def get(self, kid: str, /) -> VerifyKey | None:
        """Verification key for an access-token kid (next, active or retiring)."""
        return self._lookup.get(kid)

    def verification_keys(self, purpose: KeyPurpose = KeyPurpose.ACCESS) -> dict[str, VerifyKey]:
        return {k.kid: k.verify_key() for k in self._keys if k.published and k.purpose is purpose}

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Public JWK Set (RFC 7517 §5) of the published access keys; never symmetric ones."""
        return {
            "keys": [
                public_jwk(k.material, k.alg, k.kid)
                for k in self._keys
                if k.published and k.purpose is KeyPurpose.ACCESS and not k.symmetric
            ]
        }


def check_publishable(keys: Iterable[VerifyKey]) -> None:
    """R23 for a set we are about to publish or trust."""
    seen: set[str] = set()
    kinds: set[bool] = set()
    for key in keys:
        if key.kid in seen:
            raise JWKSError(f"kid {key.kid!r} appears twice")
        seen.add(key.kid)
        kinds.add(key.alg.kty == "oct")
    if len(kinds) > 1:
        raise JWKSError("a key set may not mix symmetric and asymmetric keys")
