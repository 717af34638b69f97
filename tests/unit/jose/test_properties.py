"""Property tests for the verify path (R1–R5, R7, R12, R13–R16, R21) and strict base64url (R3).

The central property (R21): whatever ``Verifier.verify`` is given, it returns a dict of claims
or raises ``InvalidToken`` — never any other exception. On top of that, where an oracle is cheap:

* a token that differs from a validly signed one in any way is rejected (strict, canonical
  parsing leaves exactly one encoding per signed content; the signature covers the rest);
* a re-signed token with an arbitrary header is accepted exactly when that header is
  ``{alg, kid, typ}`` with the key's alg and kid, an accepted typ, and no duplicates;
* a re-signed token with arbitrary claims is accepted only if the claims meet R13–R16, and is
  accepted when they are all well formed;
* ``b64decode`` is the exact inverse of ``b64encode`` and refuses every non-canonical input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from tokenward import FrozenClock, InvalidToken, Issuer, KeyRing, MalformedToken, Verifier
from tokenward.claims import RFC9068_REQUIRED, is_number
from tokenward.jose.algorithms import ALGORITHMS
from tokenward.jose.jws import b64decode, b64encode, sign_compact

from ...conftest import AUD, ISS, T0

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ACCEPTED_TYPS = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY = 30.0

PROPS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=100, deadline=None)


@dataclass(frozen=True)
class Target:
    """A key, a verifier for it, and one valid token signed with it."""

    alg: str
    kid: str
    material: Any
    verifier: Verifier
    token: str
    claims: dict[str, Any]

    def sign(self, header: bytes, payload: bytes) -> str:
        """Sign ``payload`` under the raw JSON ``header`` with the real key."""
        return sign_compact(b64encode(header), payload, ALGORITHMS[self.alg], self.material)


def _target(alg: str) -> Target:
    ring = KeyRing()  # generated once per module (RSA is slow)
    ring.generate(alg, T0)
    clock = FrozenClock(T0)
    token = Issuer(ring, issuer=ISS, clock=clock).issue("alice", AUD, scope="read")
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    claims = verifier.verify(token)
    key = ring.signing_key()
    return Target(alg, key.kid, key.material, verifier, token, claims)


TARGETS = [_target(alg) for alg in ("ES256", "HS256", "EdDSA", "RS256")]
targets = st.sampled_from(TARGETS)
# Re-signing every example with RSA-3072 costs milliseconds; the header and claim rules do not
# depend on the algorithm family, so the re-signing properties use the fast keys.
fast_targets = st.sampled_from([t for t in TARGETS if not t.alg.startswith("RS")])


def outcome(verifier: Verifier, token: Any) -> dict[str, Any] | None:
    """The claims, or None if rejected with InvalidToken; anything else fails the test."""
    try:
        result = verifier.verify(token)
    except InvalidToken:
        return None
    except Exception as exc:  # R21: e.g. RecursionError, UnicodeDecodeError, KeyError
        raise AssertionError(f"verify raised {type(exc).__name__}: {exc!r}") from exc
    assert isinstance(result, dict)
    return result


# -- JSON values ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # includes NaN and ±Infinity: json.dumps writes them, we must refuse them
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


# One level of nesting: cheap to generate, and enough for member values (depth is its own test).
shallow_json = (
    json_scalars
    | st.lists(json_scalars, max_size=3)
    | st.dictionaries(st.text(max_size=4), json_scalars, max_size=3)
)
finite_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # orjson's exact integer range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- anything at all ------------------------------------------------------------------------


@PROPS
@given(targets, st.text(max_size=300))
@example(TARGETS[0], "")
@example(TARGETS[0], "..")
@example(TARGETS[0], "a.b.c")
@example(TARGETS[0], "a.b.c.d.e")
@example(TARGETS[0], "e30.e30.e30")
@example(TARGETS[0], "=.=.=")
def test_arbitrary_text_is_rejected_cleanly(target: Target, text: str) -> None:
    assert outcome(target.verifier, text) is None


@PROPS
@given(targets, st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_cleanly(target: Target, data: bytes) -> None:
    assert outcome(target.verifier, data) is None


@FEW
@given(targets, json_values)
def test_non_string_inputs_are_rejected_cleanly(target: Target, value: Any) -> None:
    if isinstance(value, str):
        value = [value]
    assert outcome(target.verifier, value) is None


segment = st.text(alphabet=B64URL, max_size=120)


@PROPS
@given(targets, segment, segment, segment)
def test_arbitrary_base64url_triples_are_rejected_cleanly(
    target: Target, h: str, p: str, s: str
) -> None:
    assert outcome(target.verifier, f"{h}.{p}.{s}") is None


@PROPS
@given(targets, json_values, segment, segment)
def test_random_json_header_over_random_segments(
    target: Target, header: Any, p: str, s: str
) -> None:
    token = f"{b64encode(dumps(header)).decode()}.{p}.{s}"
    assert outcome(target.verifier, token) is None


# -- mutated valid tokens -------------------------------------------------------------------

ascii_chars = st.characters(codec="ascii")
any_char = st.one_of(st.sampled_from(B64URL + ".=+/ \t\n"), ascii_chars, st.characters())


def _assert_only_original_verifies(target: Target, token: str) -> None:
    result = outcome(target.verifier, token)
    if token == target.token:
        assert result == target.claims
    else:
        assert result is None, f"a modified token verified: {token!r}"


@PROPS
@given(targets, st.data())
def test_flipped_character_is_rejected(target: Target, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(target.token) - 1))
    c = data.draw(any_char)
    _assert_only_original_verifies(target, target.token[:i] + c + target.token[i + 1 :])


@PROPS
@given(targets, st.data())
def test_inserted_character_is_rejected(target: Target, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(target.token)))
    c = data.draw(any_char)
    _assert_only_original_verifies(target, target.token[:i] + c + target.token[i:])


@PROPS
@given(targets, st.data())
def test_deleted_characters_are_rejected(target: Target, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(target.token) - 1))
    n = data.draw(st.integers(1, 4))
    _assert_only_original_verifies(target, target.token[:i] + target.token[i + n :])


@FEW
@given(targets, st.data())
def test_swapped_or_repeated_segments_are_rejected(target: Target, data: st.DataObject) -> None:
    parts = target.token.split(".")
    order = data.draw(st.lists(st.sampled_from(parts), min_size=1, max_size=5))
    _assert_only_original_verifies(target, ".".join(order))


@PROPS
@given(targets, json_values)
def test_header_reencoded_with_random_json_is_rejected(target: Target, header: Any) -> None:
    """Same payload and signature, a new header: the signature no longer covers it."""
    _, p, s = target.token.split(".")
    _assert_only_original_verifies(target, f"{b64encode(dumps(header)).decode()}.{p}.{s}")


@PROPS
@given(targets, st.text(alphabet=B64URL, max_size=3), st.sampled_from(["=", "==", " ", "\n"]))
def test_padding_or_whitespace_anywhere_is_rejected(target: Target, extra: str, junk: str) -> None:
    """R3: no '=' padding, no whitespace, even when the rest still decodes."""
    h, p, s = target.token.split(".")
    for token in (f"{h}{junk}.{p}.{s}", f"{h}.{p}{junk}.{s}", f"{h}.{p}.{s}{junk}"):
        assert outcome(target.verifier, token) is None
    assert outcome(target.verifier, f"{h}.{p}.{s}{extra}{junk}") is None


# -- re-signed tokens: the header and claim rules are the only gate ---------------------------

HEADER_NAMES = ["alg", "kid", "typ", "crit", "jwk", "jku", "x5u", "x5c", "b64", "zip", "cty"]
TYP_SPELLINGS = ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT", "JWT", "rt+jwt"]


@st.composite
def header_members(draw: st.DrawFn, target: Target) -> list[tuple[str, Any]]:
    """Start from a valid header; maybe shuffle, replace, add, drop or duplicate members."""
    pairs: list[tuple[str, Any]] = [
        ("alg", target.alg),
        ("kid", target.kid),
        ("typ", draw(st.sampled_from(TYP_SPELLINGS))),
    ]
    pairs = list(draw(st.permutations(pairs)))
    value = st.one_of(
        shallow_json,
        st.sampled_from([*ALGORITHMS, "none", "NONE", "nOnE", target.alg.lower()]),
        st.just(target.kid),
        st.sampled_from(TYP_SPELLINGS),
    )
    name = st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=6))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "add", "drop", "duplicate"]))
        if op == "add" or not pairs:
            pairs.insert(draw(st.integers(0, len(pairs))), (draw(name), draw(value)))
            continue
        i = draw(st.integers(0, len(pairs) - 1))
        if op == "replace":
            pairs[i] = (pairs[i][0], draw(value))
        elif op == "drop":
            del pairs[i]
        else:
            pairs.insert(draw(st.integers(0, len(pairs))), (pairs[i][0], draw(value)))
    return pairs


def _header_is_acceptable(target: Target, pairs: list[tuple[str, Any]]) -> bool:
    names = [n for n, _ in pairs]
    members = dict(pairs)
    typ = members.get("typ")
    return (
        len(names) == len(set(names))  # R4: duplicates reject
        and set(names) == {"alg", "kid", "typ"}  # R5 allowlist; all three required
        and members["alg"] == target.alg  # R7 (and R8: 'none' is never the key's alg)
        and members["kid"] == target.kid  # R6
        and isinstance(typ, str)
        and typ.lower() in ACCEPTED_TYPS  # R17
    )


@PROPS
@given(fast_targets, st.data())
def test_resigned_random_header_accepted_exactly_when_valid(
    target: Target, data: st.DataObject
) -> None:
    pairs = data.draw(header_members(target))
    sep = data.draw(st.sampled_from([",", ", ", ",\n"]))
    raw = ("{" + sep.join(f"{json.dumps(n)}:{json.dumps(v)}" for n, v in pairs) + "}").encode()
    token = target.sign(raw, dumps(target.claims))
    result = outcome(target.verifier, token)
    event("accepted" if result is not None else "rejected")
    if _header_is_acceptable(target, pairs):
        assert result == target.claims
    else:
        assert result is None, f"header accepted: {raw!r}"


@FEW
@given(fast_targets, json_values)
def test_resigned_arbitrary_json_header_is_handled(target: Target, header: Any) -> None:
    token = target.sign(dumps(header), dumps(target.claims))
    result = outcome(target.verifier, token)
    if result is not None:
        assert header == {"alg": target.alg, "kid": target.kid, "typ": header["typ"]}


@FEW
@given(fast_targets, st.integers(2, 40), st.sampled_from(["[", "{", '{"a":']))
def test_deeply_nested_header_is_rejected_without_recursion(
    target: Target, depth: int, opener: str
) -> None:
    raw = (opener * depth).encode()
    assert outcome(target.verifier, target.sign(raw, dumps(target.claims))) is None


# -- re-signed tokens with arbitrary claims ------------------------------------------------

VALID_CLAIMS: dict[str, Any] = {
    "iss": ISS,
    "sub": "alice",
    "aud": AUD,
    "iat": int(T0),
    "nbf": int(T0),
    "exp": int(T0) + 300,
    "jti": "jti-1",
    "client_id": "web",
    "scope": "read",
    "tv": 1,
}
numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.sampled_from([T0 - 31, T0 - 29, T0, T0 + 29, T0 + 31, 0, -1, 1e308, "1700000300"]),
)
aud_values = st.one_of(
    st.just(AUD),
    st.just([AUD]),
    st.just(["other", AUD]),
    st.just([]),
    st.just(AUD.upper()),
    st.lists(shallow_json, max_size=3),
)
STRANGE = {"exp": numbers, "iat": numbers, "nbf": numbers, "aud": aud_values}


@st.composite
def claim_sets(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """Claims where each member is kept, dropped or replaced; also whether all were kept."""
    claims: dict[str, Any] = {}
    untouched = True
    for name, good in VALID_CLAIMS.items():
        action = draw(st.sampled_from(["keep"] * 7 + ["drop", "replace"]))
        if action == "keep":
            claims[name] = good
            continue
        untouched = False
        if action == "replace":
            claims[name] = draw(st.one_of(STRANGE.get(name, shallow_json), shallow_json))
    extra = draw(st.dictionaries(st.text(max_size=6), finite_json_values, max_size=1))
    for name, value in extra.items():
        if name not in claims and name not in VALID_CLAIMS:
            claims[name] = value
    return claims, untouched


def _claims_acceptable(claims: dict[str, Any]) -> bool:
    """Necessary conditions (R13–R16) for an accepted payload."""
    exp: Any = claims.get("exp")
    aud = claims.get("aud")
    aud_ok = aud == AUD or (isinstance(aud, list) and AUD in aud)
    return (
        claims.keys() >= RFC9068_REQUIRED
        and claims.get("iss") == ISS
        and aud_ok
        and is_number(exp)
        and exp + LEEWAY > T0
        and all(is_number(claims[n]) for n in ("iat", "nbf") if n in claims)
        and (("iat" not in claims) or claims["iat"] <= T0 + LEEWAY)
        and (("nbf" not in claims) or claims["nbf"] <= T0 + LEEWAY)
        and all(isinstance(claims[n], str) for n in ("sub", "jti", "client_id"))
    )


@PROPS
@given(fast_targets, claim_sets())
def test_resigned_random_claims(target: Target, drawn: tuple[dict[str, Any], bool]) -> None:
    claims, untouched = drawn
    header = dumps({"alg": target.alg, "kid": target.kid, "typ": "at+jwt"})
    # json.dumps writes NaN/Infinity where they occur; the verifier must refuse those.
    result = outcome(target.verifier, target.sign(header, dumps(claims)))
    event("accepted" if result is not None else "rejected")
    if untouched:
        assert result == claims
    if result is not None:
        assert _claims_acceptable(result), f"accepted bad claims: {result!r}"


@PROPS
@given(fast_targets, st.one_of(st.binary(max_size=200), json_values.map(dumps)))
def test_resigned_payload_that_is_not_a_claims_object(target: Target, payload: bytes) -> None:
    header = dumps({"alg": target.alg, "kid": target.kid, "typ": "at+jwt"})
    result = outcome(target.verifier, target.sign(header, payload))
    if result is not None:
        assert _claims_acceptable(result)


@FEW
@given(fast_targets, st.integers(100, 5000))
def test_deeply_nested_payload_is_rejected_cleanly(target: Target, depth: int) -> None:
    header = dumps({"alg": target.alg, "kid": target.kid, "typ": "at+jwt"})
    nested = b'{"exp":' + b"[" * depth + b"]" * depth + b"}"
    assert outcome(target.verifier, target.sign(header, nested)) is None


# -- strict base64url (R3) ------------------------------------------------------------------


@PROPS
@given(st.binary(max_size=200))
def test_b64_roundtrip(data: bytes) -> None:
    encoded = b64encode(data)
    assert set(encoded.decode()) <= set(B64URL)  # no '=', '+', '/', whitespace
    assert len(encoded) % 4 != 1
    assert b64decode(encoded) == data


@PROPS
@given(st.text(alphabet=B64URL, max_size=120))
def test_b64decode_accepts_only_canonical_encodings(text: str) -> None:
    """Every string over the alphabet either fails cleanly or is the one encoding of its bytes."""
    seg = text.encode()
    try:
        data = b64decode(seg)
    except MalformedToken:
        return
    assert b64encode(data) == seg


@PROPS
@given(st.binary(min_size=1, max_size=200).filter(lambda b: len(b) % 3), st.data())
def test_b64decode_rejects_nonzero_unused_bits(data: bytes, draw: st.DataObject) -> None:
    encoded = b64encode(data)
    rem = len(encoded) % 4
    unused = 0x0F if rem == 2 else 0x03
    last = B64URL.index(chr(encoded[-1]))
    assert last & unused == 0  # canonical to begin with
    bits = draw.draw(st.integers(1, unused))
    bad = encoded[:-1] + B64URL[last | bits].encode()
    try:
        b64decode(bad)
    except MalformedToken:
        return
    raise AssertionError(f"non-canonical {bad!r} was accepted")


@PROPS
@given(st.binary(max_size=60), st.integers(1, 3))
def test_b64decode_rejects_impossible_length(data: bytes, cut: int) -> None:
    encoded = b64encode(data)
    for candidate in (encoded + b"A", encoded[:-cut] if len(encoded) > cut else b"A"):
        if len(candidate) % 4 == 1:
            try:
                b64decode(candidate)
            except MalformedToken:
                continue
            raise AssertionError(f"{candidate!r} has an impossible length and decoded")
