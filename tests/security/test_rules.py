"""SECURITY.md R6–R8, R10–R12: key and algorithm — how a token finds its key and proves itself.

The rule tests are split by theme (each test is named ``test_rN_...`` or after its CVE):
  test_rules_structure.py  R1–R5, R19   size, dots, base64url, header JSON, allowlist, JWE
  test_rules.py            R6–R8, R10–R12   kid, alg, none, signature form, MAC, exact bytes
  test_rules_keys.py       R9           key types, HMAC secret length, RSA size, curves
  test_rules_claims.py     R13–R18      exp/nbf/iat, iss, aud, RFC 9068 claims, typ, iss+sub
  test_rules_failure.py    R21          one 401 invalid_token shape; never a 5xx (fuzzed)
  test_rules_keysets.py    R22–R24      revocation vs malleability, JWKS sets, key purpose
Hand-built tokens come from forge.py; the attack corpus is test_forged_corpus.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import tokenward.jose.algorithms as algorithms
import tokenward.tokens as tokens
from tests.security.forge import (
    ALGS,
    AUD,
    DROP,
    EC_SIZE,
    ISS,
    ORDERS,
    b64,
    claims,
    der_sig,
    ec_parts,
    ec_raw,
    jbytes,
    keyed,
    rejects,
    sign,
    unb64,
    with_sig,
)
from tokenward import FrozenClock, Verifier
from tokenward.jose.algorithms import ALGORITHMS
from tokenward.jose.jws import VerifyKey

ES = keyed("ES256")


@pytest.fixture
def v(clock: FrozenClock) -> Verifier:
    return ES.verifier(clock)


# -- R6 kid: exact match among configured keys, strict pattern ---------------------------
KID_INJECTIONS = [
    "../../../../etc/passwd",
    "/dev/null",
    "..",
    "./key",
    "C:\\keys\\k.pem",
    "file:///etc/passwd",
    "https://attacker.example/jwks.json",
    "//attacker.example/k",
    "k?x=1",
    "k#frag",
    "k&x=1",
    "%2e%2e%2fetc%2fpasswd",
    "' OR '1'='1",
    "1; DROP TABLE keys--",
    "k' UNION SELECT 'secret",
    "$(id)",
    "`id`",
    "{kid}",
    "<script>",
    "",
    " ",
    "k k",
    "kid\n",
    "kid\x00",
    "\x00",
    ".hidden",
    "k" * 129,
    "k\u00e9",
    "\u212a",  # KELVIN SIGN: upper-cases like 'K'
]


@pytest.mark.parametrize("kid", KID_INJECTIONS, ids=lambda k: repr(k)[:30])
def test_r6_kid_injection_rejected_before_key_lookup(clock: FrozenClock, kid: str) -> None:
    asked: list[str] = []

    class Spy:
        def get(self, k: str, /) -> VerifyKey | None:
            asked.append(k)
            return ES.ring.get(ES.kid)  # would hand out the real key for any kid

    v = Verifier(Spy(), issuer=ISS, audience=AUD, clock=clock)
    rejects(v, ES.token(ES.header(kid=kid)), "malformed")
    assert asked == []  # the kid never reached a key source (no fetch, no path, no query)


@pytest.mark.parametrize("kid", [1, None, True, 1.5, ["k"], {"k": 1}])
def test_r6_kid_must_be_a_string(v: Verifier, kid: Any) -> None:
    rejects(v, ES.token(ES.header(kid=kid)))


def test_r6_kid_missing(v: Verifier) -> None:
    rejects(v, ES.token(ES.header(kid=DROP)), "malformed")


def test_r6_unknown_kid_rejected(v: Verifier) -> None:
    kid = ES.kid
    assert v.verify(ES.token())  # control
    for other in ("k" * 128, kid.swapcase(), kid[:-1], kid + "A", keyed("ES384").kid):
        assert other != kid
        rejects(v, ES.token(ES.header(kid=other)), "unknown_kid")


def test_r6_kid_is_matched_exactly(clock: FrozenClock) -> None:
    asked: list[str] = []

    class Spy:
        def get(self, k: str, /) -> VerifyKey | None:
            asked.append(k)
            return ES.ring.get(k)

    v = Verifier(Spy(), issuer=ISS, audience=AUD, clock=clock)
    assert v.verify(ES.token())
    assert asked == [ES.kid]


# -- R7 one key, one alg, byte-for-byte --------------------------------------------------
def test_r7_rsa_key_refuses_other_rsa_algs(clock: FrozenClock) -> None:
    rs = keyed("RS256")
    v = rs.verifier(clock)
    assert v.verify(rs.token())  # control
    for alg in ("PS256", "RS384", "RS512", "PS512"):
        # A genuine signature by the right private key, only under another algorithm.
        rejects(v, rs.token(rs.header(alg=alg)), "invalid_algorithm")


def test_r7_ec_key_refuses_other_curves_algs(v: Verifier) -> None:
    for alg in ("ES384", "ES512"):
        rejects(v, ES.token(ES.header(alg=alg)), "invalid_algorithm")


def test_r7_hmac_key_refuses_longer_hash(clock: FrozenClock) -> None:
    hs = keyed("HS256")
    v = hs.verifier(clock)
    assert v.verify(hs.token())
    for alg in ("HS384", "HS512"):
        rejects(v, hs.token(hs.header(alg=alg)), "invalid_algorithm")


@pytest.mark.parametrize(
    "alg",
    [
        "es256",
        "Es256",
        "eS256",
        "ES256 ",
        " ES256",
        "ES256\x00",
        "ES-256",
        "ES256\n",
        "ＥＳ256",
        "ES2560",
        "ES25",
        "ES256K",
        "Ed25519",
        "RS1",
        "HS1",
        "dir",
        "RSA-OAEP",
        "",
    ],
)
def test_r7_alg_spelling_must_match_exactly(v: Verifier, alg: str) -> None:
    rejects(v, ES.token(ES.header(alg=alg), alg="ES256"), "invalid_algorithm")


@pytest.mark.parametrize("alg", [None, 256, True, ["ES256"], {"alg": "ES256"}])
def test_r7_alg_must_be_a_string(v: Verifier, alg: Any) -> None:
    rejects(v, ES.token(ES.header(alg=alg), alg="ES256"))


def test_r7_jwk_without_alg_binds_one_default(clock: FrozenClock) -> None:
    rs = keyed("RS256")
    jwk = {k: v for k, v in rs.ring.jwks()["keys"][0].items() if k != "alg"}
    v = Verifier({"keys": [jwk]}, issuer=ISS, audience=AUD, clock=clock)
    assert v.verify(rs.token())
    rejects(v, rs.token(rs.header(alg="PS256")), "invalid_algorithm")


# -- R8 none ------------------------------------------------------------------------------
NONES = ["none", "None", "NONE", "nOnE", "noNe", "none ", "none\x00", "NONE\n"]


@pytest.mark.parametrize("alg", NONES, ids=repr)
@pytest.mark.parametrize("sig", ["", "AAAA", "valid"])
@pytest.mark.parametrize("base", ["ES256", "HS256"])
def test_r8_none_never_accepted(clock: FrozenClock, alg: str, sig: str, base: str) -> None:
    k = keyed(base)
    h = b64(jbytes(k.header(alg=alg)))
    p = b64(jbytes(claims()))
    s = b64(sign(base, k.private, f"{h}.{p}".encode())) if sig == "valid" else sig
    err = rejects(k.verifier(clock), f"{h}.{p}.{s}")
    assert err.code in ("malformed", "invalid_algorithm")


def test_r8_no_none_in_the_table() -> None:
    assert not {a.lower().strip() for a in ALGORITHMS} & {"none", ""}


# -- R10 fixed signature lengths; ECDSA range ---------------------------------------------
@pytest.mark.parametrize("alg", ALGS)
def test_r10_signature_length_is_exact(clock: FrozenClock, alg: str) -> None:
    k = keyed(alg)
    good = k.token()
    assert k.verifier(clock).verify(good)  # control
    sig = unb64(good.split(".")[2])
    for bad in (sig[:-1], sig + b"\x00", b"\x00" + sig, sig[: len(sig) // 2], sig * 2):
        rejects(k.verifier(clock), with_sig(good, bad), "bad_signature")


@pytest.mark.parametrize("alg", list(EC_SIZE))
def test_r10_ecdsa_der_and_padding_rejected(clock: FrozenClock, alg: str) -> None:
    k = keyed(alg)
    good = k.token()
    sig = unb64(good.split(".")[2])
    r, s = ec_parts(sig)
    size = EC_SIZE[alg]
    assert k.verifier(clock).verify(good)
    for bad in (
        der_sig(sig),
        ec_raw(r, s, size + 1),
        ec_raw(r, s, size + 2),
        ec_raw(r, s, size)[1:],
    ):
        rejects(k.verifier(clock), with_sig(good, bad), "bad_signature")


@pytest.mark.parametrize("alg", list(EC_SIZE))
def test_cve_2022_21449_psychic_signature(clock: FrozenClock, alg: str) -> None:
    k = keyed(alg)
    good = k.token()
    r, s = ec_parts(unb64(good.split(".")[2]))
    n, size = ORDERS[alg], EC_SIZE[alg]
    bad = [(0, 0), (0, s), (r, 0), (n, n), (n, s), (r, n), (n - 1, n - 1), (r, s + n)]
    if r + n < 1 << (8 * size):  # P-521: r + n still fits in 66 bytes
        bad.append((r + n, s))
    for br, bs in bad:
        if br.bit_length() <= 8 * size and bs.bit_length() <= 8 * size:
            rejects(k.verifier(clock), with_sig(good, ec_raw(br, bs, size)), "bad_signature")


class _AcceptAll:
    """A backend that accepts every signature (like Java 15–18 did for r = s = 0)."""

    key_size = 2048

    def verify(self, *_: Any) -> None:
        return None


def test_r10_group_orders_in_this_suite_are_right() -> None:
    curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
    for alg, n in ORDERS.items():
        ec.derive_private_key(n - 1, curves[alg])  # the largest valid scalar
        with pytest.raises(ValueError):
            ec.derive_private_key(n, curves[alg])


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_cve_2022_21449_range_checked_before_the_backend(alg: str) -> None:
    algo, size, n = ALGORITHMS[alg], EC_SIZE[alg], ORDERS[alg]
    assert algo.verify(_AcceptAll(), b"data", ec_raw(1, 1, size))  # the fake does accept
    for r, s in ((0, 0), (0, 1), (1, 0), (n, 1), (1, n)):
        assert not algo.verify(_AcceptAll(), b"data", ec_raw(r, s, size))
    assert not algo.verify(_AcceptAll(), b"data", der_sig(ec_raw(1, 1, size)))
    assert not algo.verify(_AcceptAll(), b"data", ec_raw(1, 1, size + 1))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_r10_length_checked_before_the_backend(alg: str) -> None:
    algo = ALGORITHMS[alg]
    good_len = 256 if alg != "EdDSA" else 64
    assert algo.verify(_AcceptAll(), b"data", b"\x01" * good_len)
    for n in (0, good_len - 1, good_len + 1):
        assert not algo.verify(_AcceptAll(), b"data", b"\x01" * n)


# -- R11 constant-time MAC comparison -----------------------------------------------------
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_r11_hmac_compared_in_constant_time(
    clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, alg: str
) -> None:
    real = algorithms.hmac.compare_digest
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(algorithms.hmac, "compare_digest", spy)
    k = keyed(alg)
    good = k.token()
    assert k.verifier(clock).verify(good)
    sig = unb64(good.split(".")[2])
    rejects(k.verifier(clock), with_sig(good, sig[:-1] + bytes([sig[-1] ^ 1])), "bad_signature")
    assert len(calls) == 2
    assert all(len(a) == ALGORITHMS[alg].hash_size for a, _ in calls)


# -- R12 the signature covers the exact received bytes -----------------------------------
def test_r12_reencoded_header_fails(v: Verifier) -> None:
    good = ES.token()
    _, p, s = good.split(".")
    assert v.verify(good)
    for raw in (
        b'{"alg": "ES256", "kid": "%s", "typ": "at+jwt"}' % ES.kid.encode(),
        b'{"kid":"%s","alg":"ES256","typ":"at+jwt"}' % ES.kid.encode(),
        jbytes(ES.header()) + b"\n",
        b'{"alg":"ES\\u0032\\u0035\\u0036","kid":"%s","typ":"at+jwt"}' % ES.kid.encode(),
    ):
        rejects(v, f"{b64(raw)}.{p}.{s}", "bad_signature")


def test_r12_reencoded_payload_fails(v: Verifier) -> None:
    body = claims()
    good = ES.token(payload=jbytes(body))
    h, _, s = good.split(".")
    assert v.verify(good)
    for raw in (
        json.dumps(body).encode(),
        jbytes(dict(reversed(list(body.items())))),
        jbytes(body).replace(b'"alice"', b'"\\u0061lice"'),
        jbytes(body) + b" ",
        jbytes({**body, "sub": "admin"}),
        jbytes({**body, "scope": "read admin"}),
    ):
        rejects(v, f"{h}.{b64(raw)}.{s}", "bad_signature")


def test_r12_signature_over_decoded_bytes_is_not_a_signature(v: Verifier) -> None:
    hdr, body = jbytes(ES.header()), jbytes(claims())
    sig = sign("ES256", ES.private, hdr + b"." + body)
    rejects(v, f"{b64(hdr)}.{b64(body)}.{b64(sig)}", "bad_signature")


def test_r12_signature_from_another_token_fails(v: Verifier) -> None:
    a, b = ES.token(), ES.token(payload=claims(sub="admin"))
    rejects(v, with_sig(b, unb64(a.split(".")[2])), "bad_signature")


def test_r12_payload_not_parsed_before_signature(
    v: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.orjson.loads
    parsed: list[Any] = []

    class Orjson:
        JSONDecodeError = tokens.orjson.JSONDecodeError

        @staticmethod
        def loads(data: Any) -> Any:
            parsed.append(data)
            return real(data)

    monkeypatch.setattr(tokens, "orjson", Orjson)
    h = b64(jbytes(ES.header()))
    for junk in (b"{not json", b"[" * 2000, b"\xff\xfe", b'{"exp":1e999}'):
        p = b64(junk)
        rejects(v, f"{h}.{p}.{b64(b'x' * 64)}", "bad_signature")
        assert parsed == []
        # The same payload validly signed is parsed — and only then found malformed.
        rejects(v, ES.token(payload=junk), "malformed")
        assert len(parsed) == 1
        parsed.clear()


def test_r12_header_cache_does_not_skip_the_signature(v: Verifier) -> None:
    good = ES.token()
    assert v.verify(good)  # header bytes now cached
    h, _, s = good.split(".")
    rejects(v, f"{h}.{b64(jbytes(claims(sub='admin')))}.{s}", "bad_signature")
