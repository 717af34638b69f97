"""Verify-side claim rules (SECURITY.md R13–R18): pure functions, the clock is passed in.

RFC 7519 §4.1 defines the registered claims; RFC 9068 §2.2 makes ``iss exp aud sub
client_id iat jti`` mandatory in an ``at+jwt`` access token.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from tokenward.errors import ExpiredToken, InvalidClaims, TokenNotYetValid

__all__ = ["RFC9068_REQUIRED", "ClaimRules", "check_claims", "is_number"]

RFC9068_REQUIRED: frozenset[str] = frozenset(
    {"iss", "exp", "aud", "sub", "client_id", "iat", "jti"}
)
_STRING_CLAIMS = ("iss", "sub", "jti", "client_id", "scope")


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What a validator demands of a payload."""

    issuer: str
    audiences: frozenset[str]
    leeway: float = 30.0
    required: frozenset[str] = RFC9068_REQUIRED

    @classmethod
    def build(
        cls,
        issuer: str,
        audience: str | Collection[str],
        leeway: float = 30.0,
        required: Collection[str] = RFC9068_REQUIRED,
    ) -> ClaimRules:
        auds = frozenset([audience] if isinstance(audience, str) else audience)
        if not issuer or not auds or not all(isinstance(a, str) and a for a in auds):
            raise ValueError("issuer and audience must be non-empty strings")
        if not (0 <= leeway <= 300):
            raise ValueError("leeway must be between 0 and 300 seconds")
        return cls(issuer, auds, float(leeway), frozenset(required) | {"exp"})


def is_number(value: object) -> bool:
    """A JSON number: int or finite float, never bool, never a numeric string (R13)."""
    t = type(value)
    if t is int:
        return True
    return t is float and math.isfinite(value)  # type: ignore[arg-type]


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise InvalidClaims(f"{name} must be a number, not null")
        return None
    if not is_number(value):
        raise InvalidClaims(f"{name} must be a JSON number")
    return float(value)


def check_times(claims: Mapping[str, Any], now: float, leeway: float) -> float:
    """R13: exp required; nbf and iat honoured with leeway. Returns exp."""
    exp = _time_claim(claims, "exp")
    if exp is None:
        raise InvalidClaims("exp is required")
    if now >= exp + leeway:  # RFC 7519 §4.1.4: "on or after" the expiry is too late
        raise ExpiredToken("token has expired")
    nbf = _time_claim(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise TokenNotYetValid("token is not valid yet (nbf)")
    iat = _time_claim(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise TokenNotYetValid("token was issued in the future (iat)")
    return exp


def _check_audience(aud: object, audiences: frozenset[str]) -> None:
    # R15, RFC 7519 §4.1.3: a string or an array of strings containing our identifier.
    if isinstance(aud, str):
        if aud in audiences:
            return
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if audiences.intersection(aud):
            return
    else:
        raise InvalidClaims("aud must be a string or an array of strings")
    raise InvalidClaims("token is not intended for this audience")


def _time_fast(value: object) -> bool:
    # The common case, an int, decided without a call; floats go through is_number.
    return type(value) is int or is_number(value)


def check_claims(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> float:
    """Apply R13–R16; returns ``exp``. Raises an InvalidClaims subclass.

    Written flat on purpose: this runs on every cold verify (DESIGN.md principle 5). The
    first test is the payload our issuer writes — every claim present, of its exact type,
    no ``nbf``; anything else takes :func:`check_claims_fully`, which decides and words it.
    Once that test holds only the times can fail, so refusing them here says what the
    full check would say.
    """
    g = claims.get
    exp, iat, sub, jti, cid = g("exp"), g("iat", 0), g("sub"), g("jti"), g("client_id")
    aud, iss = g("aud"), g("iss")
    if (
        type(exp) is int
        and type(iat) is int
        and type(sub) is str
        and sub
        and type(jti) is str
        and jti
        and type(cid) is str
        and cid
        and type(iss) is str
        and iss == rules.issuer  # R14: exact, case-sensitive
        and type(aud) is str
        and aud in rules.audiences  # R15
        and type(g("scope", "")) is str
        and type(g("tv", 0)) is int  # R21: never a TypeError later
        and "nbf" not in claims
        and rules.required <= claims.keys()  # R16
    ):
        if now >= exp + rules.leeway:  # RFC 7519 §4.1.4: "on or after" the expiry is too late
            raise ExpiredToken("token has expired")
        if iat > now + rules.leeway:
            raise TokenNotYetValid("token was issued in the future (iat)")
        return float(exp)
    return check_claims_fully(claims, rules, now)


def check_claims_fully(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> float:
    """Every rule with its own message, for any payload; see :func:`check_claims`."""
    if not rules.required <= claims.keys():
        missing = sorted(rules.required - claims.keys())[0]
        raise InvalidClaims(f"required claim missing: {missing}")
    for name in _STRING_CLAIMS:
        if name in claims:
            value = claims[name]
            if type(value) is not str or (not value and name != "scope"):
                raise InvalidClaims(f"{name} must be a non-empty string")
    exp, iat = claims["exp"], claims.get("iat", 0)  # absent iat: 0 never lies in the future
    if not _time_fast(exp) or not _time_fast(iat) or "nbf" in claims:
        exp = check_times(claims, now, rules.leeway)  # slow path: exact messages, nbf, nulls
    elif now >= exp + rules.leeway:
        raise ExpiredToken("token has expired")
    elif iat > now + rules.leeway:
        raise TokenNotYetValid("token was issued in the future (iat)")
    if claims.get("iss") != rules.issuer:  # R14: exact, case-sensitive
        raise InvalidClaims("token issuer is not trusted")
    aud = claims.get("aud")
    if not (type(aud) is str and aud in rules.audiences) and (
        "aud" in claims or "aud" in rules.required
    ):
        _check_audience(aud, rules.audiences)
    if "tv" in claims and type(claims["tv"]) is not int:  # null too: R21, never a TypeError
        raise InvalidClaims("tv must be an integer")
    return float(exp)
