"""JWSVerifier.verify's fast path against verify_strict, and keys' prepared verifiers.

The fast path (a known header segment) may only ever accept what the strict path accepts
and must refuse with the strict path's error: every token here goes through both, with the
header already cached, and the outcomes must be identical — including tokens *validly
signed* over malformed segments, which is where an alphabet or canonical-bits check moved
to after the MAC would show.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenward import KeyRing
from tokenward.errors import InvalidToken
from tokenward.jose.algorithms import ALGORITHMS
from tokenward.jose.jws import JWSVerifier, VerifyKey, b64encode, encode_header

from ...conftest import T0

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ODD = "=+/. \n\t!\x00é"

RING = KeyRing()
KEY = RING.generate("HS256", T0)
SECRET: bytes = KEY.material
HEADER = encode_header({"alg": "HS256", "kid": KEY.kid, "typ": "at+jwt"})


def _mac(signing_input: bytes) -> bytes:
    return b64encode(hmac.digest(SECRET, signing_input, hashlib.sha256))


GOOD_PAYLOAD = b64encode(b'{"sub":"alice"}')
GOOD = HEADER + b"." + GOOD_PAYLOAD + b"." + _mac(HEADER + b"." + GOOD_PAYLOAD)


def _verifier() -> JWSVerifier:
    jws = JWSVerifier(RING, typs=frozenset({"at+jwt"}), max_size=400)
    jws.verify(GOOD)  # caches the header: from now on the fast path is eligible
    return jws


def _outcome(fn: Any, token: Any) -> object:
    try:
        header, key, payload = fn(token)
    except InvalidToken as exc:
        return (type(exc), str(exc))
    return (header, key.kid, payload)


def _same(jws: JWSVerifier, token: Any) -> object:
    fast, strict = _outcome(jws.verify, token), _outcome(jws.verify_strict, token)
    assert fast == strict, token
    return fast


class _Counting(JWSVerifier):
    strict_calls = 0

    def verify_strict(self, token: Any) -> Any:
        type(self).strict_calls += 1
        return super().verify_strict(token)


def test_the_fast_path_is_taken_for_a_known_header() -> None:
    jws = _Counting(RING, typs=frozenset({"at+jwt"}))
    assert jws.verify(GOOD)[2] == b'{"sub":"alice"}'  # the first: strict, caches the header
    assert _Counting.strict_calls == 1
    assert jws.verify(GOOD)[2] == b'{"sub":"alice"}'
    assert jws.verify(GOOD.decode())[2] == b'{"sub":"alice"}'
    assert _Counting.strict_calls == 1


SEGMENT = st.text(alphabet=B64URL + ODD, max_size=40)


@settings(max_examples=1500, deadline=None)
@given(
    payload=st.one_of(st.just(GOOD_PAYLOAD.decode()), SEGMENT),
    sig=st.one_of(st.none(), SEGMENT),
    header=st.one_of(st.just(HEADER.decode()), st.just(HEADER.decode()[:-1]), SEGMENT),
    tail=st.sampled_from(["", ".", ".x", "..", ".a.b"]),
    as_bytes=st.booleans(),
)
def test_fast_and_strict_agree_on_any_token(
    payload: str, sig: str | None, header: str, tail: str, as_bytes: bool
) -> None:
    """sig None: a valid MAC over the exact (possibly malformed) header and payload."""
    signing_input = f"{header}.{payload}"
    raw = signing_input.encode("utf-8")
    sig_text = _mac(raw).decode() if sig is None else sig
    token = f"{signing_input}.{sig_text}{tail}"
    _same(_verifier(), token.encode("utf-8") if as_bytes else token)


@pytest.mark.parametrize(
    "token",
    [
        GOOD,
        GOOD.decode(),
        GOOD + b"=",
        GOOD.replace(b".", b".=", 1),
        GOOD[:-1],  # a signature of impossible length or not canonical
        GOOD[:-1] + (b"B" if GOOD[-1:] != b"B" else b"C"),
        GOOD + b" ",
        b" " + GOOD,
        GOOD + b".",
        GOOD.replace(b".", b"..", 1),
        HEADER + b".." + _mac(HEADER + b"."),  # empty payload, validly signed
        HEADER + b"." + GOOD_PAYLOAD + b".",  # empty signature
        bytearray(GOOD),
        GOOD + b"A" * 400,  # over the size cap
        "é" + GOOD.decode(),
        42,
        None,
    ],
)
def test_fast_and_strict_agree_on_edge_tokens(token: Any) -> None:
    _same(_verifier(), token)


def test_a_validly_signed_non_canonical_payload_is_refused_on_both_paths() -> None:
    for payload in (b"QR", b"QUF", b"QUFBQ"):  # low bits set / impossible length
        token = HEADER + b"." + payload + b"." + _mac(HEADER + b"." + payload)
        refusal = _same(_verifier(), token)
        assert isinstance(refusal, tuple) and refusal[0].__name__ == "MalformedToken"


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_bound_verifiers_and_signers_equal_the_generic_functions(alg: str) -> None:
    algorithm = ALGORITHMS[alg]
    ring = KeyRing()
    key = ring.generate(alg, T0)
    verify_key = ring.get(key.kid)
    assert isinstance(verify_key, VerifyKey)
    sign = algorithm.signer(key.material)
    for data in (b"", b"x", b"header.payload" * 40):
        sig = sign(data)
        assert algorithm.verify(verify_key.key, data, sig)
        assert verify_key.check(data, sig)
        for bad in (sig[:-1], sig + b"\x00", bytes([sig[0] ^ 1]) + sig[1:], b""):
            assert verify_key.check(data, bad) is algorithm.verify(verify_key.key, data, bad)
            assert not verify_key.check(data, bad)
        if alg.startswith("HS"):  # deterministic: bound and one-shot MACs are the same bytes
            assert sig == algorithm.sign(key.material, data)


def test_a_key_that_is_not_bytes_keeps_the_one_shot_behaviour() -> None:
    alg = ALGORITHMS["HS256"]
    odd = VerifyKey("k", alg, bytearray(SECRET))
    data = b"a.b"
    sig = hmac.digest(SECRET, data, hashlib.sha256)
    assert odd.check(data, sig) is alg.verify(bytearray(SECRET), data, sig) is True
    weird = VerifyKey("k", alg, "not bytes")
    with pytest.raises(TypeError):
        alg.verify("not bytes", data, sig)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        weird.check(data, sig)
