"""claims.check_claims: R13–R16 as pure functions of (claims, rules, now)."""

from __future__ import annotations

from typing import Any

import pytest

from tokenward.claims import ClaimRules, check_claims, is_number
from tokenward.errors import ExpiredToken, InvalidClaims, TokenNotYetValid

from ..conftest import AUD, ISS, T0

RULES = ClaimRules.build(ISS, AUD, leeway=30)


def _claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": T0,
        "exp": T0 + 300,
        "jti": "j1",
        "client_id": "c1",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def test_good_claims_return_exp() -> None:
    assert check_claims(_claims(), RULES, T0) == T0 + 300


@pytest.mark.parametrize("value", [True, "1700000300", None, [1], {"t": 1}, float("nan")])
def test_exp_must_be_a_json_number(value: object) -> None:
    with pytest.raises(InvalidClaims):
        check_claims(_claims(exp=value), RULES, T0)


def test_is_number() -> None:
    assert is_number(1) and is_number(1.5)
    assert not any(is_number(v) for v in (True, "1", None, float("inf"), float("nan")))


def test_expiry_boundary_with_leeway() -> None:
    exp = T0 + 300
    check_claims(_claims(), RULES, exp + 29.999)
    with pytest.raises(ExpiredToken):
        check_claims(_claims(), RULES, exp + 30)


def test_nbf_and_iat_in_the_future() -> None:
    check_claims(_claims(nbf=T0 + 30), RULES, T0)
    with pytest.raises(TokenNotYetValid):
        check_claims(_claims(nbf=T0 + 31), RULES, T0)
    check_claims(_claims(iat=T0 + 30), RULES, T0)
    with pytest.raises(TokenNotYetValid):
        check_claims(_claims(iat=T0 + 31), RULES, T0)


@pytest.mark.parametrize("name", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
def test_rfc9068_claims_are_required(name: str) -> None:
    with pytest.raises(InvalidClaims, match=name):
        check_claims(_claims(**{name: ...}), RULES, T0)


@pytest.mark.parametrize("iss", [ISS.upper(), ISS + "/", " " + ISS, "https://other"])
def test_issuer_is_exact(iss: str) -> None:
    with pytest.raises(InvalidClaims):
        check_claims(_claims(iss=iss), RULES, T0)


@pytest.mark.parametrize(
    ("aud", "ok"),
    [
        (AUD, True),
        ([AUD], True),
        (["x", AUD], True),
        ("x", False),
        ([], False),
        ([AUD, 1], False),
        (AUD.upper(), False),
        (None, False),
        ({"a": AUD}, False),
    ],
)
def test_audience(aud: object, ok: bool) -> None:
    if ok:
        check_claims(_claims(aud=aud), RULES, T0)
    else:
        with pytest.raises(InvalidClaims):
            check_claims(_claims(aud=aud), RULES, T0)


def test_several_accepted_audiences() -> None:
    rules = ClaimRules.build(ISS, ["a", "b"])
    check_claims(_claims(aud="b"), rules, T0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sub", ""),
        ("sub", 5),
        ("jti", None),
        ("client_id", ["c"]),
        ("scope", 3),
        ("tv", "1"),
        ("tv", 1.0),
    ],
)
def test_claim_types(name: str, value: object) -> None:
    with pytest.raises(InvalidClaims):
        check_claims(_claims(**{name: value}), RULES, T0)


def test_custom_required_claims_keep_exp() -> None:
    rules = ClaimRules.build(ISS, AUD, required=["sub"])
    assert "exp" in rules.required
    check_claims({"iss": ISS, "sub": "a", "exp": T0 + 1, "aud": AUD}, rules, T0)


@pytest.mark.parametrize(
    "kwargs",
    [{"issuer": ""}, {"audience": ""}, {"audience": []}, {"leeway": -1}, {"leeway": 3600}],
)
def test_rules_reject_nonsense(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"issuer": ISS, "audience": AUD, **kwargs}
    with pytest.raises(ValueError):
        ClaimRules.build(**args)
