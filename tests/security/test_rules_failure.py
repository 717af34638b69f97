"""SECURITY.md R21: every rejection is the same 401 ``invalid_token``; nothing is ever a 5xx.

The inputs are chosen to reach each stage of verify — and the places where a careless
implementation raises RecursionError, OverflowError, UnicodeDecodeError, TypeError,
KeyError or ValueError instead of rejecting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.forge import DROP, T0, claims, jbytes, keyed, sign
from tokenward import FrozenClock, InvalidToken, RevocationView, Verifier

ES = keyed("ES256")


def _signed_payload(raw: bytes) -> str:
    return ES.token(payload=raw)


def _p(**over: Any) -> str:
    return ES.token(payload=claims(**over))


def _raw_member(member: bytes) -> bytes:
    return jbytes(claims(exp=DROP))[:-1] + b"," + member + b"}"


BAD: dict[str, Callable[[], Any]] = {
    "none-object": lambda: None,
    "int": lambda: 12345,
    "float": lambda: 1.5,
    "list": lambda: [ES.token()],
    "dict": lambda: {"token": ES.token()},
    "bytearray": lambda: bytearray(ES.token().encode()),
    "memoryview": lambda: memoryview(ES.token().encode()),
    "empty-str": lambda: "",
    "empty-bytes": lambda: b"",
    "dots-only": lambda: "..",
    "non-ascii-str": lambda: "é.é.é",
    "lone-surrogate": lambda: "\ud800.\ud800.\ud800",
    "non-ascii-bytes": lambda: b"\xff.\xfe.\xfd",
    "nul-bytes": lambda: b"\x00.\x00.\x00",
    "oversized": lambda: "A" * 8193,
    "five-segments": lambda: "a.b.c.d.e",
    "header-not-b64-json": lambda: "AAAA.AAAA.AAAA",
    "header-impossible-length": lambda: "A.AAAA.AAAA",
    "header-deep-nesting": lambda: ES.token(b"[" * 6000),
    "header-huge-int": lambda: ES.token(b'{"alg":' + b"9" * 6000 + b"}"),
    "header-lone-surrogate-escape": lambda: ES.token(ES.header(typ="\ud800")),
    "header-invalid-utf8": lambda: ES.token(b'{"alg":"\xff"}'),
    "kid-huge": lambda: ES.token(ES.header(kid="k" * 5000)),
    "alg-none": lambda: ES.token(ES.header(alg="none"), sig=b""),
    "alg-none-with-sig": lambda: ES.token(ES.header(alg="none"), sig=b"x"),
    "alg-mismatch": lambda: ES.token(ES.header(alg="ES384")),
    "sig-impossible-length": lambda: ES.token() + "A",
    "sig-garbage": lambda: ES.token(sig=b"\xff" * 64),
    "payload-not-json": lambda: _signed_payload(b"not json"),
    "payload-invalid-utf8": lambda: _signed_payload(b'{"sub":"\xff"}'),
    "payload-lone-surrogate": lambda: _signed_payload(b'{"sub":"\\ud800"}'),
    "payload-array": lambda: _signed_payload(jbytes([claims()])),
    "payload-string": lambda: _signed_payload(b'"claims"'),
    "payload-null": lambda: _signed_payload(b"null"),
    "payload-empty": lambda: _signed_payload(b""),
    "payload-deep-nesting": lambda: _signed_payload(b'{"x":' + b"[" * 3000 + b"]" * 3000 + b"}"),
    "payload-bom": lambda: _signed_payload(b"\xef\xbb\xbf" + jbytes(claims())),
    "payload-nan": lambda: _signed_payload(_raw_member(b'"exp":NaN')),
    "payload-exp-overflow": lambda: _signed_payload(_raw_member(b'"exp":1e400')),
    "payload-exp-huge-int": lambda: _signed_payload(_raw_member(b'"exp":' + b"9" * 4000)),
    "payload-exp-min-float": lambda: _p(exp=-1.7976931348623157e308),
    "payload-nbf-max-float": lambda: _p(nbf=1.7976931348623157e308),
    "payload-iat-max-float": lambda: _p(iat=1.7976931348623157e308),
    "payload-nbf-2**64": lambda: _p(exp=2**64, nbf=2**64),
    "payload-tv-float": lambda: _p(tv=1.5),
    "payload-tv-huge": lambda: _p(tv=2**70),
    "payload-tv-bool": lambda: _p(tv=True),
    "payload-iss-object": lambda: _p(iss={"a": 1}),
    "payload-aud-object": lambda: _p(aud={"a": 1}),
    "payload-sub-list": lambda: _p(sub=["alice"]),
    "payload-jti-int": lambda: _p(jti=7),
    "payload-scope-list": lambda: _p(scope=["read"]),
    "payload-expired": lambda: _p(exp=int(T0) - 3600),
    "wrong-typ": lambda: ES.token(ES.header(typ="JWT")),
    "unknown-kid": lambda: ES.token(ES.header(kid="unknown")),
    "bad-signature": lambda: ES.token(
        payload=claims(), sig=sign("ES256", keyed("ES384").private, b"x")[:64]
    ),
}


def _assert_uniform(err: BaseException) -> None:
    assert isinstance(err, InvalidToken), f"{type(err).__name__}: {err}"
    assert (err.error, err.status, err.expose) == ("invalid_token", 401, True)


@pytest.mark.parametrize("name", list(BAD))
def test_r21_every_rejection_is_a_401_invalid_token(clock: FrozenClock, name: str) -> None:
    token = BAD[name]()
    v = ES.verifier(clock)
    try:
        v.verify(token)
    except Exception as exc:  # anything else than InvalidToken is a 5xx bug
        _assert_uniform(exc)
    else:
        pytest.fail(f"{name} was accepted")


def test_r21_the_shape_does_not_depend_on_the_cause(clock: FrozenClock) -> None:
    shapes, codes = set(), set()
    for make in BAD.values():
        try:
            ES.verifier(clock).verify(make())
        except InvalidToken as exc:
            shapes.add((exc.error, exc.status, exc.expose, isinstance(exc, InvalidToken)))
            codes.add(exc.code)
    assert len(shapes) == 1
    assert codes >= {
        "malformed",
        "invalid_algorithm",
        "unknown_kid",
        "bad_signature",
        "invalid_claims",
        "expired",
        "wrong_type",
    }


@pytest.mark.parametrize("tv", [None])
def test_r21_null_token_version_with_live_revocation_view(clock: FrozenClock, tv: Any) -> None:
    revocation = RevocationView()
    revocation.deny("some-other-jti", T0 + 300)
    revocation.remove_kid("some-other-kid")  # with a removed kid, is_revoked looks at tv too
    v = ES.verifier(clock, revocation=revocation)
    try:
        v.verify(_p(tv=tv))
    except Exception as exc:
        _assert_uniform(exc)
    else:
        pytest.fail("a null tv was accepted")


@pytest.fixture(scope="module")
def fuzz_verifier() -> Verifier:
    revocation = RevocationView()
    revocation.deny("some-other-jti", T0 + 300)
    revocation.remove_kid("some-other-kid")  # with a removed kid as well, every check runs
    return ES.verifier(FrozenClock(T0), cache_size=0, revocation=revocation)


def _verify_never_crashes(v: Verifier, token: Any) -> None:
    with contextlib.suppress(InvalidToken):
        v.verify(token)


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_r21_fuzz_arbitrary_input(fuzz_verifier: Verifier, data: Any) -> None:
    _verify_never_crashes(fuzz_verifier, data)


_GOOD = ES.token()


@_FUZZ
@given(
    st.integers(0, len(_GOOD) - 1),
    st.sampled_from(list("AZaz09-_.=+/ \n\x00é")),
    st.booleans(),
)
def test_r21_fuzz_mutated_token(fuzz_verifier: Verifier, pos: int, ch: str, insert: bool) -> None:
    token = _GOOD[:pos] + ch + _GOOD[pos + (0 if insert else 1) :]
    _verify_never_crashes(fuzz_verifier, token)


@_FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=20,
    )
)
def test_r21_fuzz_signed_payloads(fuzz_verifier: Verifier, value: Any) -> None:
    """Whatever a key holder signs, verify answers with claims or InvalidToken."""
    _verify_never_crashes(fuzz_verifier, ES.token(payload=claims(x=value)))
    _verify_never_crashes(fuzz_verifier, ES.token(payload=jbytes(value)))
    _verify_never_crashes(fuzz_verifier, ES.token(ES.header(typ=value)))
    _verify_never_crashes(fuzz_verifier, ES.token(ES.header(kid=value)))
