"""Who the caller is and what they may do: the Principal built from verified claims, and
the requirements (scopes, roles, permissions) a route checks against it.

Half of the core every framework adapter shares; the other half, guard.py, turns an
``Authorization`` header into a Principal and a refusal into RFC 6750 / RFC 9457 HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from tokenward.errors import AccessDenied

__all__ = [
    "ANY",
    "MissingRights",
    "Principal",
    "PrincipalFactory",
    "Requirement",
    "requirement",
    "requires_permissions",
    "requires_roles",
    "requires_scopes",
]

# RFC 6749 §3.3: scope-token = 1*NQCHAR (no space, no '"', no '\': safe in a quoted-string)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

_EMPTY: frozenset[str] = frozenset()


def _strings(value: object) -> frozenset[str]:
    # `type(...) is` rather than isinstance: this runs on every request (claims are JSON).
    if type(value) is str:  # RFC 6749 §3.3 / RFC 9068 §2.2.3: space-delimited
        return frozenset(value.split())
    if type(value) is list:
        return frozenset(v for v in value if type(v) is str)
    return _EMPTY


def _bit_names(value: object, bits: Mapping[str, int]) -> frozenset[str]:
    # bool is an int subclass: `true` must not read as bit 1. Anything else grants nothing.
    if type(value) is not int or value < 0:
        return _EMPTY
    return frozenset(name for name, mask in bits.items() if value & mask == mask)


class Principal:
    """The verified caller, identified by ``issuer`` + ``subject`` (SECURITY.md R18).

    Read-only. ``scopes``, ``roles`` and ``permissions`` are derived from the claims on
    first use: one Principal is built per request, most routes look at one of the three or
    none, and building all three sets up front was half of the SDK's per-request cost.
    """

    __slots__ = ("_bits", "_claims", "_issuer", "_permissions", "_roles", "_scopes", "_subject")

    # Lets Django, DRF and Starlette's `requires` treat a Principal as a signed-in user.
    is_authenticated: ClassVar[bool] = True

    def __init__(
        self,
        subject: str,
        issuer: str,
        *,
        scopes: frozenset[str] | None = None,
        roles: frozenset[str] | None = None,
        permissions: frozenset[str] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        """Explicit sets win; those left None are derived from ``claims``."""
        self._subject, self._issuer = subject, issuer
        self._claims: Mapping[str, Any] = {} if claims is None else claims
        self._scopes, self._roles, self._permissions = scopes, roles, permissions
        self._bits: tuple[Mapping[str, int], str] | None = None

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        permission_bits: Mapping[str, int] | None = None,
        bits_claim: str = "perm",
    ) -> Principal:
        """Scopes from ``scope``, roles from ``roles``, permissions from the ``permissions``
        list plus, with ``permission_bits``, every name whose bits are all set in the
        integer claim ``bits_claim`` (e.g. ``{"read": 1, "write": 2, "admin": 4}``)."""
        sub, iss = claims.get("sub", ""), claims.get("iss", "")
        self = cls(sub if type(sub) is str else str(sub), iss if type(iss) is str else str(iss))
        self._claims = claims
        if permission_bits:
            self._bits = (permission_bits, bits_claim)
        return self

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def claims(self) -> Mapping[str, Any]:
        """Every verified claim."""
        return self._claims

    @property
    def scopes(self) -> frozenset[str]:
        """From ``scope``."""
        if self._scopes is None:
            self._scopes = _strings(self._claims.get("scope"))
        return self._scopes

    @property
    def roles(self) -> frozenset[str]:
        """From ``roles``."""
        if self._roles is None:
            self._roles = _strings(self._claims.get("roles"))
        return self._roles

    @property
    def permissions(self) -> frozenset[str]:
        """From ``permissions``, plus the names of the bits set in the bitfield claim."""
        if self._permissions is None:
            found = _strings(self._claims.get("permissions"))
            if self._bits is not None:
                found |= _bit_names(self._claims.get(self._bits[1]), self._bits[0])
            self._permissions = found
        return self._permissions

    def _key(self) -> tuple[str, str, frozenset[str], frozenset[str], frozenset[str]]:
        return (self._issuer, self._subject, self.scopes, self.roles, self.permissions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Principal) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:  # the claims stay out: they may hold personal data
        return (
            f"Principal(subject={self._subject!r}, issuer={self._issuer!r}, "
            f"scopes={set(self.scopes)}, roles={set(self.roles)}, "
            f"permissions={set(self.permissions)})"
        )

    @classmethod
    def factory(
        cls, *, permission_bits: Mapping[str, int] | None = None, bits_claim: str = "perm"
    ) -> PrincipalFactory:
        """A ``principal_factory`` for the adapters, with the bit table checked once."""
        for name, mask in (permission_bits or {}).items():
            if type(mask) is not int or mask <= 0:
                raise ValueError(f"permission bit for {name!r} must be a positive int")
        return partial(
            cls.from_claims, permission_bits=dict(permission_bits or {}), bits_claim=bits_claim
        )


PrincipalFactory = Callable[[Mapping[str, Any]], Principal]


class MissingRights(AccessDenied):
    """The caller lacks a scope, role or permission; ``missing`` names what."""

    def __init__(self, kind: str, missing: Iterable[str], scopes: tuple[str, ...] = ()) -> None:
        names = sorted(missing)
        plural = "s" if len(names) > 1 else ""
        super().__init__(f"missing {kind}{plural}: {' '.join(names)}", code=f"missing_{kind}")
        self.kind, self.missing, self.required_scopes = kind, tuple(names), scopes


def _names(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)  # "read" is not r, e, a, d


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs; calling it with a Principal returns it or raises MissingRights."""

    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = [s for s in self.scopes if not _SCOPE_TOKEN.fullmatch(s)]
        if bad:
            raise ValueError(f"not an RFC 6749 §3.3 scope token: {bad[0]!r}")

    def __call__(self, principal: Principal) -> Principal:
        if self.scopes and not principal.scopes.issuperset(self.scopes):
            raise MissingRights("scope", set(self.scopes) - principal.scopes, self.scopes)
        if self.roles and not principal.roles.issuperset(self.roles):
            raise MissingRights("role", set(self.roles) - principal.roles, self.scopes)
        if self.permissions and not principal.permissions.issuperset(self.permissions):
            missing = set(self.permissions) - principal.permissions
            raise MissingRights("permission", missing, self.scopes)
        return principal

    def __and__(self, other: Requirement) -> Requirement:
        return Requirement(
            self.scopes + other.scopes,
            self.roles + other.roles,
            self.permissions + other.permissions,
        )


ANY = Requirement()  # any valid token


def requirement(
    *,
    scopes: str | Iterable[str] = (),
    roles: str | Iterable[str] = (),
    permissions: str | Iterable[str] = (),
) -> Requirement:
    need = Requirement(_names(scopes), _names(roles), _names(permissions))
    return ANY if need == ANY else need  # Guard.authorize skips the check for ANY


def requires_scopes(*scopes: str) -> Requirement:
    return Requirement(scopes=scopes)


def requires_roles(*roles: str) -> Requirement:
    return Requirement(roles=roles)


def requires_permissions(*permissions: str) -> Requirement:
    return Requirement(permissions=permissions)
