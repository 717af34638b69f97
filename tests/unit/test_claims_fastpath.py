"""check_claims' fast test for the issuer's own payload shape against check_claims_fully.

The fast test may only ever say what the full one says: the same exp, or the same error
with the same message. Payloads are drawn around the shape our issuer writes (int times,
every claim a non-empty string) with every field liable to be absent, null, empty or of
another JSON type.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenward.claims import RFC9068_REQUIRED, ClaimRules, check_claims, check_claims_fully
from tokenward.errors import ExpiredToken, InvalidClaims, TokenNotYetValid

from ..conftest import AUD, ISS, T0

NOW = int(T0)
RULES = [
    ClaimRules.build(ISS, AUD, leeway=30),
    ClaimRules.build(ISS, [AUD, "api://other"], leeway=0, required={"iss", "exp"}),
]
ABSENT = object()


def _verdict(fn: Any, claims: dict[str, Any], rules: ClaimRules, now: float) -> object:
    try:
        return fn(claims, rules, now)
    except InvalidClaims as exc:  # ExpiredToken and TokenNotYetValid are InvalidClaims too
        return (type(exc), str(exc))


_ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.just(""),
    st.text(max_size=3),
    st.lists(st.just(AUD), max_size=2),
    st.dictionaries(st.just("a"), st.just(1), max_size=1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**40), 2**40),
)


def _time(base: int) -> st.SearchStrategy[Any]:
    near = st.integers(base - 400, base + 400)
    return st.one_of(near, near, near.map(float))


FIELDS = ("iss", "sub", "aud", "iat", "exp", "nbf", "jti", "client_id", "scope", "tv")
VALID: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([ISS, ISS.upper(), ISS + "/"]),
    "sub": st.sampled_from(["alice", "bob"]),
    "aud": st.sampled_from([AUD, "api://other", "nope", [AUD], ["nope"]]),
    "iat": _time(NOW),
    "exp": _time(NOW + 60),
    "nbf": _time(NOW),
    "jti": st.just("j1"),
    "client_id": st.just("c1"),
    "scope": st.sampled_from(["", "read", "read write"]),
    "tv": st.integers(0, 3),
}


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """The issuer's shape (times drawn), then up to three fields changed or dropped."""
    claims: dict[str, Any] = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": draw(st.integers(NOW - 400, NOW + 400)),
        "exp": draw(st.integers(NOW - 400, NOW + 400)),
        "jti": "j1",
        "client_id": "c1",
        "scope": "read",
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        value = draw(st.one_of(VALID[name], st.just(ABSENT), _ODD))
        if value is ABSENT:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


@settings(max_examples=1000, deadline=None)
@given(claims=payloads(), rules=st.sampled_from(RULES), now=st.integers(NOW - 100, NOW + 500))
def test_fast_and_full_checks_agree(claims: dict[str, Any], rules: ClaimRules, now: int) -> None:
    fast = _verdict(check_claims, claims, rules, now)
    full = _verdict(check_claims_fully, claims, rules, now)
    assert fast == full
    assert type(fast) is type(full)  # 300 and 300.0 compare equal; the types must too


def _issued(**over: Any) -> dict[str, Any]:
    base = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "j1",
        "client_id": "c1",
        "scope": "read",
    }
    base.update(over)
    return base


def test_the_issuers_payload_passes_and_its_times_still_bind() -> None:
    rules = RULES[0]
    assert check_claims(_issued(), rules, NOW) == NOW + 300
    with pytest.raises(ExpiredToken):
        check_claims(_issued(), rules, NOW + 330)
    assert check_claims(_issued(), rules, NOW + 329.9) == NOW + 300
    with pytest.raises(TokenNotYetValid):
        check_claims(_issued(iat=NOW + 31), rules, NOW)


@pytest.mark.parametrize(
    "over",
    [
        {"iss": ISS.upper()},
        {"aud": "api://other"},
        {"sub": ""},
        {"jti": ""},
        {"client_id": ""},
        {"sub": 5},
        {"jti": None},
        {"client_id": 7},
        {"scope": None},
        {"tv": True},
        {"tv": None},
        {"exp": True},
        {"iat": "1"},
        {"nbf": NOW + 100},
    ],
)
def test_anything_off_the_issuers_shape_is_refused_as_before(over: dict[str, Any]) -> None:
    rules = RULES[0]
    with pytest.raises(InvalidClaims):
        check_claims(_issued(**over), rules, NOW)


@pytest.mark.parametrize("missing", sorted(RFC9068_REQUIRED - {"exp"}))
def test_a_missing_required_claim_is_refused(missing: str) -> None:
    claims = _issued()
    del claims[missing]
    with pytest.raises(InvalidClaims, match=r"missing|must be|issuer|audience"):
        check_claims(claims, RULES[0], NOW)
