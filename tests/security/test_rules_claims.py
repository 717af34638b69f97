"""SECURITY.md R13–R18: claims, checked only after the signature verified.

Every token here is validly signed by the configured key: the claim is the only defect.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.forge import AUD, DROP, ISS, T0, claims, jbytes, keyed, rejects
from tokenward import (
    RFC9068_REQUIRED,
    FrozenClock,
    Issuer,
    KeyPurpose,
    KeyRing,
    RevocationView,
    StaticKeys,
    Verifier,
)
from tokenward.claims import is_number
from tokenward.revocation import TokenFacts

ES = keyed("ES256")


@pytest.fixture
def v(clock: FrozenClock) -> Verifier:
    return ES.verifier(clock)


def _tok(**over: Any) -> str:
    return ES.token(payload=claims(**over))


# -- R13 exp required, a finite JSON number; nbf / iat with leeway ----------------------
@pytest.mark.parametrize(
    "exp",
    [
        DROP,
        "9999999999",
        "1e10",
        str(int(T0) + 300),
        None,
        True,
        False,
        [int(T0) + 300],
        {"t": 1},
        "",
    ],
    ids=repr,
)
def test_r13_exp_required_and_a_number(v: Verifier, exp: Any) -> None:
    rejects(v, _tok(exp=exp), "invalid_claims")


def test_r13_exp_as_json_number_accepted(v: Verifier) -> None:
    assert v.verify(_tok(exp=T0 + 300.5))  # a float is a JSON number
    assert v.verify(_tok(exp=10**15))


def test_r13_infinite_exp_cannot_be_expressed(v: Verifier) -> None:
    for raw in (b"1e400", b"-1e400", b"Infinity", b"NaN"):
        body = ES.token(payload=_payload_with(b'"exp":' + raw))
        rejects(v, body, "malformed")
    for value in (float("inf"), float("-inf"), float("nan"), True, "1", None):
        assert not is_number(value)


def _payload_with(member: bytes) -> bytes:
    return jbytes(claims(exp=DROP))[:-1] + b"," + member + b"}"


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize("value", ["0", None, True, [0], {"a": 0}], ids=repr)
def test_r13_nbf_iat_must_be_numbers(v: Verifier, name: str, value: Any) -> None:
    rejects(v, _tok(**{name: value}), "invalid_claims")


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_r13_future_nbf_iat_within_leeway(clock: FrozenClock, name: str) -> None:
    v = ES.verifier(clock)
    assert v.verify(_tok(**{name: T0 + 30}))  # default leeway 30 s
    rejects(ES.verifier(clock), _tok(**{name: T0 + 31}), "not_yet_valid")
    rejects(ES.verifier(clock, leeway=0), _tok(**{name: T0 + 1}), "not_yet_valid")
    assert ES.verifier(clock, leeway=60).verify(_tok(**{name: T0 + 60}))


def test_r13_expiry_boundary(clock: FrozenClock) -> None:
    token = _tok(exp=T0 + 300)
    clock.now = T0 + 300 + 30 - 0.001
    assert ES.verifier(clock).verify(token)
    clock.now = T0 + 300 + 30  # exactly exp + leeway: too late (RFC 7519 §4.1.4 "on or after")
    rejects(ES.verifier(clock), token, "expired")
    clock.now = T0 + 300
    rejects(ES.verifier(clock, leeway=0), token, "expired")


def test_r13_expiry_checked_on_cache_hits(clock: FrozenClock) -> None:
    v = ES.verifier(clock)
    token = ES.issue(clock, ttl=60)
    assert v.verify(token)
    assert v.verify(token)  # now answered from the cache
    clock.advance(60 + 30)
    rejects(v, token, "expired")
    rejects(v, token, "expired")


@pytest.mark.parametrize("leeway", [-1, 301, 10**9])
def test_r13_leeway_is_small(clock: FrozenClock, leeway: float) -> None:
    with pytest.raises(ValueError, match="leeway"):
        ES.verifier(clock, leeway=leeway)


# -- R14 iss exact ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "iss",
    [
        ISS.upper(),
        "https://Issuer.example",
        ISS + "/",
        ISS + " ",
        " " + ISS,
        ISS + "\x00",
        ISS + "#",
        ISS.replace("https", "http"),
        "https://\u0456ssuer.example",  # Cyrillic і
        ISS[:-1],
        [ISS],
        {"iss": ISS},
        None,
        "",
        DROP,
    ],
    ids=repr,
)
def test_r14_iss_exact_and_case_sensitive(v: Verifier, iss: Any) -> None:
    rejects(v, _tok(iss=iss), "invalid_claims")


def test_r14_exact_iss_accepted(v: Verifier) -> None:
    assert v.verify(_tok(iss=ISS))["iss"] == ISS


# -- R15 aud contains our identifier exactly ---------------------------------------------
@pytest.mark.parametrize("aud", [AUD, [AUD], ["https://other.example", AUD], [AUD, AUD]], ids=repr)
def test_r15_aud_accepted(v: Verifier, aud: Any) -> None:
    assert v.verify(_tok(aud=aud))["aud"] == aud


@pytest.mark.parametrize(
    "aud",
    [
        DROP,
        None,
        "",
        "https://other.example",
        AUD.upper(),
        AUD + "/",
        AUD + ".evil",
        "https://api",
        AUD[:-1],
        [],
        ["https://other.example"],
        [AUD, 1],
        [1],
        [None],
        [[AUD]],
        {"aud": AUD},
        f"{AUD} https://other.example",
        1,
        True,
    ],
    ids=repr,
)
def test_r15_aud_rejected(v: Verifier, aud: Any) -> None:
    rejects(v, _tok(aud=aud), "invalid_claims")


def test_r15_verifier_with_several_audiences(clock: FrozenClock) -> None:
    v = ES.verifier(clock, audience=["https://a.example", AUD])
    assert v.verify(_tok(aud=AUD))
    assert v.verify(_tok(aud=["https://a.example"]))
    rejects(v, _tok(aud="https://b.example"), "invalid_claims")


# -- R16 RFC 9068 required claims --------------------------------------------------------
def test_r16_the_required_set_is_rfc_9068() -> None:
    assert frozenset({"iss", "exp", "aud", "sub", "client_id", "iat", "jti"}) == RFC9068_REQUIRED


@pytest.mark.parametrize("name", sorted(RFC9068_REQUIRED))
def test_r16_each_required_claim_missing(v: Verifier, name: str) -> None:
    assert v.verify(_tok())  # control
    rejects(v, _tok(**{name: DROP}), "invalid_claims")


@pytest.mark.parametrize("name", sorted(RFC9068_REQUIRED))
def test_r16_required_claim_null(v: Verifier, name: str) -> None:
    """A null is not a value: a null jti could never be revoked (R22)."""
    rejects(v, _tok(**{name: None}))


@pytest.mark.parametrize("name", ["sub", "client_id", "jti"])
@pytest.mark.parametrize("value", ["", 1, True, ["x"], {"a": "b"}], ids=repr)
def test_r16_string_claims_must_be_non_empty_strings(v: Verifier, name: str, value: Any) -> None:
    rejects(v, _tok(**{name: value}), "invalid_claims")


# -- R17 explicit typing -----------------------------------------------------------------
@pytest.mark.parametrize(
    "typ",
    [
        DROP,
        "JWT",
        "jwt",
        "rt+jwt",
        "id+jwt",
        "dpop+jwt",
        "logout+jwt",
        "application/jwt",
        "at+jwt ",
        "at+jw",
        "application/at+jwt;x=1",
        "",
        None,
        1,
        True,
    ],
    ids=repr,
)
def test_r17_access_validator_demands_at_jwt(v: Verifier, typ: Any) -> None:
    rejects(v, ES.token(ES.header(typ=typ)), "wrong_type")


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt"])
def test_r17_access_typ_accepted(v: Verifier, typ: str) -> None:
    assert v.verify(ES.token(ES.header(typ=typ)))


@pytest.fixture(scope="module")
def two_purpose_ring() -> KeyRing:
    ring = KeyRing()
    ring.generate("ES256", T0)
    ring.generate("ES256", T0, purpose=KeyPurpose.REFRESH)
    return ring


def test_r17_refresh_and_access_validators_reject_each_other(
    clock: FrozenClock, two_purpose_ring: KeyRing
) -> None:
    ring = two_purpose_ring
    issuer = Issuer(ring, issuer=ISS, clock=clock)
    access = issuer.issue("alice", AUD, client_id="c1")
    refresh = issuer.issue_refresh("alice", client_id="c1")
    access_v = Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
    refresh_keys = StaticKeys(ring.verification_keys(KeyPurpose.REFRESH))
    refresh_v = Verifier(refresh_keys, issuer=ISS, audience=ISS, typ="rt+jwt", clock=clock)
    assert access_v.verify(access)["sub"] == "alice"
    assert refresh_v.verify(refresh)["sub"] == "alice"
    rejects(access_v, refresh, "wrong_type")
    rejects(refresh_v, access, "wrong_type")
    # Even a validator that took both typs with both keys would not take the refresh as access:
    both = StaticKeys({**ring.verification_keys(), **ring.verification_keys(KeyPurpose.REFRESH)})
    lax = Verifier(both, issuer=ISS, audience=AUD, typ=["at+jwt", "rt+jwt"], clock=clock)
    rejects(lax, refresh, "invalid_claims")  # aud is the issuer, not the API


# -- R18 principals are iss + sub --------------------------------------------------------
ISS2 = "https://other-issuer.example"


def test_r18_same_sub_at_two_issuers_is_two_principals(clock: FrozenClock) -> None:
    revocation = RevocationView()
    v1 = ES.verifier(clock, revocation=revocation)
    v2 = ES.verifier(clock, issuer=ISS2, revocation=revocation)
    t1 = _tok(tv=0)
    t2 = _tok(iss=ISS2, tv=0)
    assert v1.verify(t1) and v2.verify(t2)
    revocation.set_token_version(ISS, "alice", 1)
    rejects(v1, t1, "revoked")
    assert v2.verify(t2)["sub"] == "alice"
    assert revocation.token_version(ISS2, "alice") == 0


def test_r18_no_concatenation_collisions() -> None:
    rv = RevocationView()
    rv.set_token_version("https://a.example:x", "y", 1)
    for iss, sub in (
        ("https://a.example", "x:y"),
        ("https://a.example:", "xy"),
        ("y", "https://a.example:x"),
    ):
        assert not rv.is_revoked(TokenFacts(iss, sub, "j", T0, 0, "k"))
    assert rv.is_revoked(TokenFacts("https://a.example:x", "y", "j", T0, 0, "k"))
