"""The ONE behaviour table every framework adapter must pass, and the world it runs in.

Each adapter test module builds an app with the four ROUTES (each answering
``{"sub": principal.subject}``), wires it to ``World.verifier`` with ``World.factory`` as
principal factory, then runs every CASE through it and hands the outcome to ``check``.
So a token is accepted or refused identically — status, WWW-Authenticate, body — by the
pure ASGI middleware, FastAPI, Flask, Django views and DRF.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tokenward import FrozenClock, Issuer, KeyRing, Verifier
from tokenward.sdk.guard import PROBLEM_JSON
from tokenward.sdk.principal import Principal, Requirement, requirement

from ...conftest import AUD, ISS, T0

BITS = {"read": 1, "write": 2, "admin": 4}  # seed item 40: permissions as a bitfield
BITS_CLAIM = "perm"
REVOKED_SUBJECT = "mallory"  # her token version is bumped: every token she holds is revoked

ROUTES: dict[str, Requirement] = {
    "/any": requirement(),
    "/scope": requirement(scopes=["write"]),
    "/role": requirement(roles=["admin"]),
    "/perm": requirement(permissions=["write"]),
}

NO_CREDENTIALS = 'Bearer realm="tokenward"'
INVALID = 'Bearer realm="tokenward", error="invalid_token"'
NEEDS_WRITE = 'Bearer realm="tokenward", error="insufficient_scope", scope="write"'
FORBIDDEN = 'Bearer realm="tokenward", error="insufficient_scope"'


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass
class World:
    """A key ring, an issuer and a verifier on a frozen clock."""

    ring: KeyRing
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(T0))

    def __post_init__(self) -> None:
        self.issuer = Issuer(self.ring, issuer=ISS, clock=self.clock)
        self.verifier = Verifier(self.ring, issuer=ISS, audience=AUD, clock=self.clock)
        self.verifier.revocation.set_token_version(ISS, REVOKED_SUBJECT, 1)
        self.factory = Principal.factory(permission_bits=BITS, bits_claim=BITS_CLAIM)

    def token(self, sub: str = "alice", *, aud: str = AUD, **kw: Any) -> str:
        claims: Mapping[str, Any] = kw.pop("claims", {})
        return self.issuer.issue(sub, aud, claims=claims, **kw)

    def expired(self) -> str:
        old = Issuer(self.ring, issuer=ISS, clock=FrozenClock(T0 - 3600))
        return old.issue("alice", AUD, ttl=60)

    def bad_signature(self) -> str:
        head, payload, _ = self.token().split(".")
        other = self.token("bob").split(".")[2]  # a real signature, over other bytes
        return f"{head}.{payload}.{other}"


Auth = Callable[[World], str | None]


def bearer(make: Callable[[World], str]) -> Auth:
    return lambda w: f"Bearer {make(w)}"


class Case(NamedTuple):
    id: str
    path: str
    authorization: Auth
    status: int
    challenge: str | None = None


CASES = [
    Case("valid", "/any", bearer(lambda w: w.token()), 200),
    Case("scheme-case-insensitive", "/any", lambda w: f"bEaReR {w.token()}", 200),
    Case("expired", "/any", bearer(World.expired), 401, INVALID),
    Case("revoked", "/any", bearer(lambda w: w.token(REVOKED_SUBJECT)), 401, INVALID),
    Case("bad-signature", "/any", bearer(World.bad_signature), 401, INVALID),
    Case(
        "wrong-audience", "/any", bearer(lambda w: w.token(aud="https://x.example")), 401, INVALID
    ),
    Case("not-a-jwt", "/any", lambda w: "Bearer not-a-jwt", 401, INVALID),
    Case("two-tokens", "/any", lambda w: f"Bearer {w.token()} {w.token()}", 401, INVALID),
    Case("empty-bearer", "/any", lambda w: "Bearer", 401, INVALID),
    Case("missing-token", "/any", lambda w: None, 401, NO_CREDENTIALS),
    Case("wrong-scheme", "/any", lambda w: "Basic YWxhZGRpbjpvcGVuc2VzYW1l", 401, NO_CREDENTIALS),
    Case("missing-token-scoped", "/scope", lambda w: None, 401, NO_CREDENTIALS),
    Case("bad-token-scoped", "/scope", bearer(World.expired), 401, INVALID),
    Case("missing-scope", "/scope", bearer(lambda w: w.token(scope="read")), 403, NEEDS_WRITE),
    Case("has-scope", "/scope", bearer(lambda w: w.token(scope="read write")), 200),
    Case(
        "missing-role",
        "/role",
        bearer(lambda w: w.token(claims={"roles": ["user"]})),
        403,
        FORBIDDEN,
    ),
    Case("has-role", "/role", bearer(lambda w: w.token(claims={"roles": ["user", "admin"]})), 200),
    Case(
        "bitfield-lacks-bit", "/perm", bearer(lambda w: w.token(claims={"perm": 5})), 403, FORBIDDEN
    ),
    Case("bitfield-has-bit", "/perm", bearer(lambda w: w.token(claims={"perm": 3})), 200),
    Case(
        "bitfield-bool-is-not-1",
        "/perm",
        bearer(lambda w: w.token(claims={"perm": True})),
        403,
        FORBIDDEN,
    ),
    Case(
        "permissions-list",
        "/perm",
        bearer(lambda w: w.token(claims={"permissions": ["write"]})),
        200,
    ),
]
IDS = [c.id for c in CASES]


def check(
    case: Case,
    status: int,
    challenge: str | None,
    body: Mapping[str, Any],
    content_type: str | None,
) -> None:
    """The outcome of ``case``; ``content_type=None`` skips the media type (DRF's JSON)."""
    assert status == case.status, (case.id, status, body)
    assert challenge == case.challenge, case.id
    if status == 200:
        assert body == {"sub": "alice"}
        return
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["error"] == ("invalid_token" if status == 401 else "insufficient_scope")
    if case.challenge == INVALID:  # R21: one detail whatever the cause
        assert body["detail"] == "the access token is invalid"
    if status == 403:
        assert body["detail"].startswith("missing ")
    if content_type is not None:
        assert content_type == PROBLEM_JSON
