"""Project Wycheproof JOSE vectors (C2SP/wycheproof, Apache-2.0), read at test time.

Where the vectors live: ``../shared/vectors/wycheproof/testvectors_v1`` next to the repo, or the
folder named by ``TOKENWARD_WYCHEPROOF_DIR`` (the ``testvectors_v1`` folder or its parent). When
they are absent the whole module is skipped at collection. They are never copied into the repo.

json_web_signature_test.json — one param per tcId:

* ``test_jws_algorithm_layer``: Wycheproof tokens carry no ``typ`` (and some no ``kid``), so a
  full Verifier rejects every one of them at R17 before any cryptography. They are therefore
  checked at the algorithm layer, by an adapter built from tokenward's own pieces:
  ``JWSVerifier.split`` (R1–R3, R19, exactly as the verifier does it), ``b64decode`` and
  ``parse_json_object`` (R3, R4), the header allowlist and ``crit`` rule (R5), the ``ALGORITHMS``
  table, and the group key imported through ``import_jwks`` (so ``use: enc`` keys are dropped as
  in production, R24) and pinned to its one ``alg`` (R7). Only the two header rules that need a
  configured key set — ``kid`` lookup/pattern (R6) and ``typ`` (R17) — are left out; the group
  provides the one key. ``valid`` vectors must verify, ``invalid`` ones must be rejected, except:

  - tcId 367, 370 (group ``base64``): marked ``invalid`` but byte-identical to the valid tcId 357.
    We assert that identity and that they verify (PROVENANCE.md: data quirk).
  - tcId 372, 373 (group ``base64``): marked ``valid`` but contain ``?`` and their MAC does not
    cover the received signing input. We assert they are rejected (PROVENANCE.md: data quirk).
  - tcId 346, 347, 350, 351 (RFC 7520 §4.2 / §4.3, Figures 20 and 27): the key's ``alg`` is
    ``PS256`` (token: PS384) or the unregistered ``ES521`` (token: ES512). A verifier that pins
    the algorithm to the key (R7) must reject them; we assert that, and that the signature does
    verify once the key is bound to the token's algorithm — so the rejection is R7 and nothing
    else.
  - ``emptyPayload`` vectors (valid, RFC 7515 allows an empty payload): tokenward's compact
    parser refuses an empty segment before any cryptography, since a JWT payload is a JSON
    object. We assert that refusal and verify the signature at the algorithm layer directly.

* ``test_jws_full_verifier``: every token also goes through a full ``Verifier`` configured with
  the group key; it must raise ``InvalidToken`` or return a dict — never any other exception.

RFC 7520 §4 (JWS examples: §4.1 RS256, §4.2 PS384, §4.3 ES512, §4.4 HS256) is covered by the
groups whose name contains ``rfc7520``; their param ids read ``tcNNN-rfc7520-s4.N-FigureNN-...``.

json_web_key_test.json: each test's key set goes through ``import_jwks`` and the token through
the adapter (``test_jwk_keyset``), every signature key through ``import_jwk`` on its own
(``test_jwk_import``), and each key set into a full Verifier (``test_jwk_full_verifier``).

json_web_encryption_test.json: every JWE is refused unopened by the JWS verifier (R19).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from tokenward import FrozenClock, InvalidToken, StaticKeys, Verifier
from tokenward.errors import (
    InvalidAlgorithm,
    InvalidSignature,
    JWKSError,
    KeyNotFound,
    MalformedToken,
)
from tokenward.jose.algorithms import ALGORITHMS
from tokenward.jose.jwk import import_jwk, import_jwks
from tokenward.jose.jws import (
    KID_PATTERN,
    JWSVerifier,
    VerifyKey,
    b64decode,
    encode_header,
    parse_json_object,
    sign_compact,
)

from ..conftest import AUD, ISS, SHARED, T0

ENV_VAR = "TOKENWARD_WYCHEPROOF_DIR"
SIG_FILE = "json_web_signature_test.json"
KEY_FILE = "json_web_key_test.json"
ENC_FILE = "json_web_encryption_test.json"


def _vector_dir() -> Path:
    override = os.environ.get(ENV_VAR)
    base = Path(override) if override else SHARED / "vectors" / "wycheproof"
    for candidate in (base / "testvectors_v1", base):
        if (candidate / SIG_FILE).is_file():
            return candidate
    return base


VECTORS = _vector_dir()
if not ((VECTORS / SIG_FILE).is_file() and (VECTORS / KEY_FILE).is_file()):
    pytest.skip(
        f"Wycheproof JOSE vectors not found (looked in {VECTORS}); "
        f"set {ENV_VAR} to the wycheproof testvectors_v1 folder to run them",
        allow_module_level=True,
    )

# joserfc warns (SecurityWarning) while importing the deliberately small RSA key of the
# json_web_key "keysize_too_small" vector; we refuse that key anyway.
pytestmark = pytest.mark.filterwarnings("ignore:Key size should be")


def _load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    if not path.is_file():
        return {"testGroups": [], "numberOfTests": 0}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


SIG = _load(SIG_FILE)
KEYS = _load(KEY_FILE)
ENC = _load(ENC_FILE)

# -- the algorithm-layer adapter ----------------------------------------------------------


class _NoKeys:
    def get(self, kid: str, /) -> VerifyKey | None:
        return None


# Used only for its split(): the exact R1–R3/R19 shape checks of the production verifier.
_SHAPE = JWSVerifier(_NoKeys(), typs=frozenset({"at+jwt"}))
_ALLOWED_MEMBERS = frozenset({"alg", "kid", "typ"})


def verify_at_alg_layer(token: Any, keys: VerifyKey | Mapping[str, VerifyKey] | None) -> bytes:
    """Verify a compact JWS under tokenward's rules minus kid-lookup and typ; return the payload.

    ``keys`` is the one configured key (the Wycheproof group key), or a {kid: key} set in which
    the header's kid selects the key. Raises InvalidToken on every rejection.
    """
    h, p, s, signing_input = _SHAPE.split(token)  # R1–R3, R19
    header = parse_json_object(b64decode(h))  # R3, R4
    if "crit" in header or header.keys() - _ALLOWED_MEMBERS:  # R5
        raise MalformedToken("header member not allowed")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:  # R8: no 'none' in the table
        raise InvalidAlgorithm("algorithm not allowed")
    if kid is not None and not isinstance(kid, str):
        raise MalformedToken("kid must be a string")
    key = keys.get(kid) if isinstance(keys, Mapping) and isinstance(kid, str) else keys
    if not isinstance(key, VerifyKey):
        raise KeyNotFound("no usable key")
    if key.alg.name != alg:  # R7: pinned to the key's one alg, byte for byte
        raise InvalidAlgorithm("algorithm does not match the key")
    if not key.alg.verify(key.key, signing_input, b64decode(s)):  # R10–R12
        raise InvalidSignature("signature does not verify")
    return b64decode(p)  # decoded only after the signature verified (R12)


def _header(token: str) -> dict[str, Any]:
    return parse_json_object(b64decode(token.split(".", maxsplit=1)[0].encode()))


def _with_test_kid(jwk: Mapping[str, Any], fallback: str) -> dict[str, Any]:
    """The JWK with a kid our pattern accepts (Wycheproof keys may lack one or use '@')."""
    out = dict(jwk)
    kid = out.get("kid")
    if not (isinstance(kid, str) and KID_PATTERN.match(kid)):
        out["kid"] = fallback
    return out


def _group_jwk(group: Mapping[str, Any]) -> Mapping[str, Any]:
    jwk: Mapping[str, Any] = group.get("public") or group["private"]  # oct keys: private only
    return jwk


_KEY_CACHE: dict[int, tuple[VerifyKey | None, str]] = {}


def group_key(index: int) -> tuple[VerifyKey | None, str]:
    """The verification key of signature-file group ``index`` as production would import it."""
    if index not in _KEY_CACHE:
        jwk = _with_test_kid(_group_jwk(SIG["testGroups"][index]), f"wycheproof-g{index}")
        try:
            keys = import_jwks({"keys": [jwk]})
        except JWKSError as exc:
            _KEY_CACHE[index] = (None, f"key refused: {exc.detail}")
        else:
            found = keys.get(jwk["kid"])
            _KEY_CACHE[index] = (found, "" if found else "use: enc key is not a verification key")
    return _KEY_CACHE[index]


# -- classifying the signature vectors ----------------------------------------------------

ACCEPT = "accept"
REJECT = "reject"
MISLABELED_INVALID = "quirk-identical-to-valid-tc357"
MISLABELED_VALID = "quirk-mac-does-not-cover-input"
PINNED_ALG = "rejected-by-alg-pinning"
EMPTY_PAYLOAD = "empty-payload-refused-by-jwt-parser"

QUIRK_IDENTICAL = {367: 357, 370: 357}
QUIRK_BAD_MAC = frozenset({372, 373})
QUIRK_PINNED = frozenset({346, 347, 350, 351})
RFC7520_SECTIONS = {"Figure13": "4.1", "Figure20": "4.2", "Figure27": "4.3", "Figure35": "4.4"}

# Vectors tokenward once got wrong (kept as regressions; now pass): none outstanding.
SRC_BUGS: dict[int, str] = {}


@dataclass(frozen=True)
class SigCase:
    group_index: int
    group: dict[str, Any] = field(repr=False)
    test: dict[str, Any] = field(repr=False)
    expect: str

    @property
    def tc(self) -> int:
        return int(self.test["tcId"])

    @property
    def token(self) -> Any:
        return self.test["jws"]


def _is_empty_payload(token: Any) -> bool:
    return isinstance(token, str) and token.count(".") == 2 and token.split(".")[1] == ""


def _classify(group: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    tc = test["tcId"]
    if tc in QUIRK_IDENTICAL:
        return MISLABELED_INVALID
    if tc in QUIRK_BAD_MAC:
        return MISLABELED_VALID
    if tc in QUIRK_PINNED:
        return PINNED_ALG
    if test["result"] == "valid":
        return EMPTY_PAYLOAD if _is_empty_payload(test["jws"]) else ACCEPT
    return REJECT  # invalid, including every JsonSerialization-flagged vector (R2)


def _sig_id(case: SigCase) -> str:
    group, test = case.group, case.test
    name = group["comment"]
    if "rfc7520" in name.lower():
        name += f"-s{RFC7520_SECTIONS.get(test['comment'], '4')}"
    parts = [f"tc{case.tc:03d}", name, test["comment"], test["result"]]
    if "JsonSerialization" in test["flags"]:
        parts.append("JsonSerialization")
    if case.expect not in (ACCEPT, REJECT):
        parts.append(case.expect)
    return "-".join(parts)


SIG_CASES = [
    SigCase(gi, group, test, _classify(group, test))
    for gi, group in enumerate(SIG["testGroups"])
    for test in group["tests"]
]
_BY_TC = {case.tc: case for case in SIG_CASES}


def _sig_params() -> list[Any]:
    params = []
    for case in SIG_CASES:
        marks = []
        if case.tc in SRC_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=SRC_BUGS[case.tc]))
        params.append(pytest.param(case, id=_sig_id(case), marks=marks))
    return params


def _sig_params_plain() -> list[Any]:
    return [pytest.param(case, id=_sig_id(case)) for case in SIG_CASES]


# -- json_web_signature_test.json ---------------------------------------------------------


@pytest.mark.parametrize("case", _sig_params())
def test_jws_algorithm_layer(case: SigCase) -> None:
    key, why = group_key(case.group_index)
    token = case.token

    if case.expect == ACCEPT:
        assert key is not None, why
        verify_at_alg_layer(token, key)

    elif case.expect == MISLABELED_INVALID:
        # Wycheproof says invalid, but it is the very token of a valid vector: it must verify.
        original = _BY_TC[QUIRK_IDENTICAL[case.tc]]
        assert original.test["result"] == "valid"
        assert token == original.token
        assert key is not None, why
        verify_at_alg_layer(token, key)

    elif case.expect == MISLABELED_VALID:
        # Wycheproof says valid; it has '?' (outside base64url) and a MAC over other bytes.
        assert "?" in token
        with pytest.raises(MalformedToken):
            verify_at_alg_layer(token, key)

    elif case.expect == PINNED_ALG:
        # R7: the key is bound to its own alg (PS256 / unregistered ES521), the token says
        # PS384 / ES512 -> reject. Bound to the token's alg, the same key does verify.
        header_alg = _header(token)["alg"]
        assert _group_jwk(case.group)["alg"] != header_alg
        with pytest.raises((InvalidAlgorithm, KeyNotFound)):
            verify_at_alg_layer(token, key)
        rebound = _with_test_kid({**_group_jwk(case.group), "alg": header_alg}, "rebound")
        verify_at_alg_layer(token, import_jwk(rebound))

    elif case.expect == EMPTY_PAYLOAD:
        # RFC 7515 allows an empty payload; a JWT never has one, so we refuse it pre-crypto.
        with pytest.raises(MalformedToken, match="empty"):
            _SHAPE.split(token)
        assert key is not None, why
        h, _, s = token.encode().split(b".")
        assert key.alg.verify(key.key, h + b".", b64decode(s)), "signature itself must verify"

    else:
        assert case.expect == REJECT
        with pytest.raises(InvalidToken):
            verify_at_alg_layer(token, key)


@pytest.mark.parametrize("case", _sig_params_plain())
def test_jws_full_verifier(case: SigCase) -> None:
    """R21: whatever the vector, the Verifier answers InvalidToken or claims, nothing else."""
    key, _ = group_key(case.group_index)
    keys = StaticKeys({key.kid: key} if key else {})
    verifier = Verifier(keys, issuer=ISS, audience=AUD, clock=FrozenClock(T0))
    tokens = [case.token]
    if isinstance(case.token, str):
        tokens.append(case.token.encode("utf-8"))
    for token in tokens:
        try:
            result = verifier.verify(token)
        except InvalidToken:
            continue
        except Exception as exc:
            pytest.fail(f"Verifier raised {type(exc).__name__}: {exc!r}")
        assert isinstance(result, dict)


def test_jws_vector_inventory() -> None:
    """Every vector is classified exactly once; the documented quirks still look as described."""
    assert len(SIG_CASES) == SIG["numberOfTests"]
    assert len(_BY_TC) == len(SIG_CASES), "tcIds are unique"
    counts = Counter((c.test["result"], c.expect) for c in SIG_CASES)
    # Every special case is one PROVENANCE.md documents (or the empty-payload JWT rule).
    for tc in (*QUIRK_IDENTICAL, *QUIRK_BAD_MAC, *QUIRK_PINNED):
        assert tc in _BY_TC, f"documented quirk tcId {tc} is missing from the vectors"
    assert {c.tc for c in SIG_CASES if c.expect == MISLABELED_INVALID} == set(QUIRK_IDENTICAL)
    assert all(_BY_TC[tc].test["result"] == "invalid" for tc in QUIRK_IDENTICAL)
    assert all(_BY_TC[tc].test["result"] == "valid" for tc in QUIRK_BAD_MAC | QUIRK_PINNED)
    assert all("rfc7520" in _BY_TC[tc].group["comment"] for tc in QUIRK_PINNED)
    assert sum(counts.values()) == len(SIG_CASES)
    assert counts[("valid", ACCEPT)] > 0 and counts[("invalid", REJECT)] > 0
    rfc7520 = [c for c in SIG_CASES if "rfc7520" in c.group["comment"]]
    assert {c.test["comment"] for c in rfc7520} == set(RFC7520_SECTIONS)


# -- json_web_key_test.json ---------------------------------------------------------------


@dataclass(frozen=True)
class KeyCase:
    group_index: int
    group: dict[str, Any] = field(repr=False)
    test: dict[str, Any] = field(repr=False)

    @property
    def keyset(self) -> dict[str, Any]:
        ks: dict[str, Any] = self.group.get("public") or self.group["private"]
        return ks


KEY_GAPS: dict[int, str] = {}  # ROCA (tc7) is detected since algorithms.is_roca_weak

KEY_CASES = [
    KeyCase(gi, group, test)
    for gi, group in enumerate(KEYS["testGroups"])
    for test in group["tests"]
]


def _key_case_id(case: KeyCase) -> str:
    t = case.test
    return f"tc{t['tcId']:02d}-{case.group['comment']}-{t['comment']}-{t['result']}"


def _key_params(with_gaps: bool) -> list[Any]:
    out = []
    for case in KEY_CASES:
        tc = case.test["tcId"]
        marks = []
        if with_gaps and tc in KEY_GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason=KEY_GAPS[tc]))
        out.append(pytest.param(case, id=_key_case_id(case), marks=marks))
    return out


@pytest.mark.parametrize("case", _key_params(with_gaps=True))
def test_jwk_keyset(case: KeyCase) -> None:
    """The key set as configured (import_jwks: R9, R23, R24), then the token under it."""
    token = case.test["jws"]
    try:
        keys: dict[str, VerifyKey] | None = import_jwks(case.keyset)
    except JWKSError:
        keys = None
    if case.test["result"] == "valid":
        assert keys is not None, "a valid key set must import"
        verify_at_alg_layer(token, keys)
    elif keys is not None:  # the set imported; then the token must not verify under it
        with pytest.raises(InvalidToken):
            verify_at_alg_layer(token, keys)


@pytest.mark.parametrize("case", _key_params(with_gaps=False))
def test_jwk_full_verifier(case: KeyCase) -> None:
    """A Verifier given the vector's key set either refuses the set (JWKSError) or the token
    (InvalidToken) or returns claims — never anything else."""
    try:
        verifier = Verifier(case.keyset, issuer=ISS, audience=AUD, clock=FrozenClock(T0))
    except JWKSError:
        assert case.test["result"] == "invalid"
        return
    try:
        result = verifier.verify(case.test["jws"])
    except InvalidToken:
        return
    except Exception as exc:
        pytest.fail(f"Verifier raised {type(exc).__name__}: {exc!r}")
    assert isinstance(result, dict)


def _single_key_params() -> list[Any]:
    """One param per key per group, with what import_jwk alone must do with it."""
    out = []
    for gi, group in enumerate(KEYS["testGroups"]):
        results = {t["result"] for t in group["tests"]}
        flags = {f for t in group["tests"] for f in t["flags"]}
        tcs = [t["tcId"] for t in group["tests"]]
        keyset = group.get("public") or group["private"]
        for ki, jwk in enumerate(keyset["keys"]):
            ident = f"g{gi:02d}-{group['comment']}-{group['tests'][0]['comment']}-key{ki}"
            marks: list[Any] = []
            if jwk.get("use") == "enc":
                marks.append(
                    pytest.mark.skip(
                        reason="encryption key (use: enc): import_jwk is the per-key layer; "
                        "import_jwks drops enc keys (R24), checked in test_jwk_keyset"
                    )
                )
                expect = "skip"
            elif "DuplicateKid" in flags:
                marks.append(
                    pytest.mark.skip(
                        reason="set-level vector (duplicate kid): see test_jwk_keyset and "
                        "test_jwk_duplicate_kid_rule"
                    )
                )
                expect = "skip"
            elif "valid" in results or "MixedKeySet" in flags:
                expect = "accept"  # mixed set: each key is fine alone, the mix is refused
            else:
                expect = "reject"
                gap = next((KEY_GAPS[tc] for tc in tcs if tc in KEY_GAPS), None)
                if gap:
                    marks.append(pytest.mark.xfail(strict=True, reason=gap))
            out.append(pytest.param(jwk, expect, id=f"{ident}-{expect}", marks=marks))
    return out


@pytest.mark.parametrize(("jwk", "expect"), _single_key_params())
def test_jwk_import(jwk: dict[str, Any], expect: str) -> None:
    if expect == "accept":
        key = import_jwk(jwk)
        assert key.alg.name == jwk["alg"] and key.kid == jwk["kid"]
    else:
        with pytest.raises(JWKSError):
            import_jwk(jwk)


def test_jwk_duplicate_kid_rule() -> None:
    """R23 on the vector's keys: its second key is also non-canonical base64, so make sure the
    duplicate-kid rule itself (not only the bad key) refuses the set."""
    (case,) = [c for c in KEY_CASES if "DuplicateKid" in c.test["flags"]]
    first = case.keyset["keys"][0]
    assert first["kid"] == case.keyset["keys"][1]["kid"]
    import_jwks({"keys": [first]})  # alone it is fine
    with pytest.raises(JWKSError, match="twice"):
        import_jwks({"keys": [first, dict(first)]})


def test_jwk_vector_inventory() -> None:
    assert len(KEY_CASES) == KEYS["numberOfTests"]
    assert len({c.test["tcId"] for c in KEY_CASES}) == len(KEY_CASES)


# -- json_web_encryption_test.json: a JWS endpoint never decrypts (R19) -------------------

ENC_CASES = [t for group in ENC["testGroups"] for t in group["tests"]]


@pytest.mark.parametrize(
    "test", [pytest.param(t, id=f"jwe-tc{t['tcId']:03d}-{t['result']}") for t in ENC_CASES]
)
def test_jwe_vectors_are_refused_unopened(test: dict[str, Any]) -> None:
    token = test["jwe"]
    with pytest.raises(MalformedToken) as info:
        _SHAPE.split(token)
    if isinstance(token, str) and token.count(".") == 4:
        assert "JWE" in info.value.detail
    verifier = Verifier(StaticKeys({}), issuer=ISS, audience=AUD, clock=FrozenClock(T0))
    with pytest.raises(MalformedToken):
        verifier.verify(token)


def _encryption_key_group(comment: str, marker: str) -> int:
    for gi, group in enumerate(SIG["testGroups"]):
        if group["comment"] == comment and marker in group["public"]:
            return gi
    pytest.skip(f"no {comment} group with {marker} in this vector snapshot")


@pytest.mark.parametrize(
    ("comment", "marker"),
    [
        pytest.param("rsa_encryption", "use", id="rsa-use-enc"),
        pytest.param("ec_key_for_encryption", "use", id="ec-use-enc"),
        pytest.param(
            "rsa_encryption",
            "key_ops",
            id="rsa-key_ops-encrypt",
        ),
        pytest.param(
            "ec_key_for_encryption",
            "key_ops",
            id="ec-key_ops-encrypt",
        ),
    ],
)
def test_r24_encryption_key_never_verifies_an_access_token(comment: str, marker: str) -> None:
    """End to end with the Wycheproof encryption keys: a well-formed at+jwt signed with the
    private half of an encryption key (``use: enc`` or ``key_ops: ["encrypt"]``) is refused
    by a Verifier whose JWK Set publishes that key."""
    group = SIG["testGroups"][_encryption_key_group(comment, marker)]
    public = dict(group["public"])
    kty = public["kty"]
    alg = "RS256" if kty == "RSA" else "ES256"
    private = (RSAKey if kty == "RSA" else ECKey).import_key(dict(group["private"])).private_key
    now = int(T0)
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "client_id": "c",
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
    }
    header = encode_header({"alg": alg, "kid": public["kid"], "typ": "at+jwt"})
    token = sign_compact(header, json.dumps(claims).encode(), ALGORITHMS[alg], private)
    try:
        verifier = Verifier({"keys": [public]}, issuer=ISS, audience=AUD, clock=FrozenClock(T0))
    except JWKSError:
        return  # refusing the whole set is fine too
    with pytest.raises(InvalidToken):
        verifier.verify(token)
