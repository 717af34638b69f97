"""SECURITY.md R1–R5 and R19: the shape of a token, decided before any cryptography.

Every malformed variant here is otherwise *validly signed* by the configured key, so that
if the rule it probes were dropped the token would verify and the test would fail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OctKey

from tests.security.forge import AUD, ISS, b64, claims, jbytes, keyed, rejects, sign, unb64
from tokenward import FrozenClock, Verifier
from tokenward.errors import MalformedToken
from tokenward.jose.jws import parse_json_object

ES = keyed("ES256")


@pytest.fixture
def v(clock: FrozenClock) -> Verifier:
    return ES.verifier(clock)


def _len_for(header: bytes, payload: bytes) -> int:
    return len(b64(header)) + len(b64(payload)) + 2 + 86  # ES256: 64-byte sig -> 86 chars


def _sized(target: int) -> str:
    """A legit ES256 token of exactly ``target`` characters."""
    for spaces in range(4):  # trailing JSON whitespace in the header shifts the length by 1
        header = jbytes(ES.header()) + b" " * spaces
        for n in range(target):
            payload = jbytes(claims(pad="x" * n))
            size = _len_for(header, payload)
            if size == target:
                return ES.token(header, payload)
            if size > target:
                break
    raise AssertionError(f"no token of length {target}")


# -- R1 size cap and dot count ----------------------------------------------------------
def test_r1_default_cap_is_8_kib(v: Verifier) -> None:
    at_cap = _sized(8192)
    assert len(at_cap) == 8192
    assert v.verify(at_cap)["sub"] == "alice"
    over = _sized(8193)
    assert len(over) == 8193
    rejects(v, over, "malformed")
    rejects(v, over.encode(), "malformed")


def test_r1_cap_is_configurable(clock: FrozenClock) -> None:
    token = ES.token()
    assert ES.verifier(clock, max_token_size=len(token)).verify(token)
    rejects(ES.verifier(clock, max_token_size=len(token) - 1), token, "malformed")


def test_r1_huge_input_rejected_cheaply(v: Verifier) -> None:
    for junk in ("A" * 10_000_000, "." * 1_000_000, ES.token() + "A" * 9000):
        rejects(v, junk, "malformed")


@pytest.mark.parametrize(
    "shape",
    [
        "{h}",
        "{h}.{p}",
        "{h}.{p}.{s}.",
        ".{h}.{p}.{s}",
        "{h}.{p}.{s}.{s}",
        "{h}..{p}.{s}",
        "{h}.{p}.",
        ".{p}.{s}",
        "{h}..{s}",
        "..",
    ],
)
def test_r1_exactly_two_dots_and_no_empty_segment(v: Verifier, shape: str) -> None:
    token = ES.token()
    h, p, s = token.split(".")
    assert v.verify(token)  # control
    rejects(v, shape.format(h=h, p=p, s=s), "malformed")


# -- R2 compact serialization only -------------------------------------------------------
def test_r2_json_serializations_rejected(v: Verifier) -> None:
    h, p, s = ES.token().split(".")
    flattened = {"protected": h, "payload": p, "signature": s}
    general = {"payload": p, "signatures": [{"protected": h, "signature": s}]}
    for doc in (flattened, general):
        rejects(v, json.dumps(doc), "malformed")
        rejects(v, json.dumps(doc).encode(), "malformed")
        rejects(v, doc, "malformed")  # a parsed dict is not a token either


def test_cve_2022_39227_compact_json_polyglot_rejected(v: Verifier) -> None:
    """python-jwt: a JSON document whose key is a valid token smuggled forged claims."""
    good = ES.token()
    h, _, s = good.split(".")
    forged = b64(jbytes(claims(sub="admin")))
    polyglot = json.dumps({f"  {good}  ": "", "protected": h, "payload": forged, "signature": s})
    rejects(v, polyglot, "malformed")
    rejects(v, f'{good}{{"payload":"{forged}"}}', "malformed")
    rejects(v, f"{h}.{forged}.{s}", "bad_signature")


# -- R3 strict base64url -----------------------------------------------------------------
def _untidy_token() -> str:
    """A legit token whose three segments all end in a partial quantum (len % 4 in {2, 3})
    and which uses both '-' and '_' (so the std-alphabet variant differs)."""
    for n in range(300):
        hdr = jbytes(ES.header()) + b" " * (n % 3)
        token = ES.token(hdr, jbytes(claims(pad="???~~~" * 4 + "x" * (n // 3))))
        if (
            all(len(seg) % 4 in (2, 3) for seg in token.split("."))
            and {"-", "_"} <= set(token)
            and set(token[-86:]) & {"-", "_"}
        ):
            return token
    raise AssertionError("could not build the test token")


def _non_canonical(seg: str) -> str:
    """Same decoded bytes, but the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return seg[:-1] + alphabet[alphabet.index(seg[-1]) | 1]


def _padded(seg: str) -> str:
    return seg + "=" * (-len(seg) % 4)


def _same(seg: str) -> str:
    return seg


def _std(seg: str) -> str:
    return seg.translate(str.maketrans("-_", "+/"))


# (header, payload, signature) transforms. When the header or payload changes, the token
# is re-signed over the mutated bytes: the encoding rule is then the only thing in the way.
R3_MUTATIONS: dict[str, tuple[Any, Any, Any]] = {
    "pad-header": (_padded, _same, _same),
    "pad-payload": (_same, _padded, _same),
    "pad-signature": (_same, _same, _padded),
    "pad-all": (_padded, _padded, _padded),
    "one-extra-equals": (_same, _same, lambda s: s + "="),
    "std-alphabet": (_std, _std, _std),
    "std-alphabet-signature": (_same, _same, _std),
    "leading-space": (lambda h: " " + h, _same, _same),
    "trailing-newline": (_same, _same, lambda s: s + "\n"),
    "trailing-crlf": (_same, _same, lambda s: s + "\r\n"),
    "space-after-dot": (_same, lambda p: " " + p, _same),
    "tab-inside": (_same, lambda p: p[:5] + "\t" + p[5:], _same),
    "newline-inside-sig": (_same, _same, lambda s: s[:40] + "\n" + s[40:]),
    "nbsp": (_same, _same, lambda s: s + "\u00a0"),
    "nul": (_same, _same, lambda s: s + "\x00"),
    "non-canonical-header": (_non_canonical, _same, _same),
    "non-canonical-payload": (_same, _non_canonical, _same),
    "non-canonical-signature": (_same, _same, _non_canonical),
    "impossible-length": (_same, _same, lambda s: s + ("A" if len(s) % 4 == 0 else "AAA")),
}


@pytest.mark.parametrize("mutation", list(R3_MUTATIONS))
def test_r3_strict_base64url(v: Verifier, clock: FrozenClock, mutation: str) -> None:
    token = _untidy_token()
    assert v.verify(token)["sub"] == "alice"  # the untouched token is fine
    h, p, s = token.split(".")
    fh, fp, fs = R3_MUTATIONS[mutation]
    h2, p2 = fh(h), fp(p)
    if (h2, p2) != (h, p):
        s = b64(sign("ES256", ES.private, f"{h2}.{p2}".encode()))
    bad = f"{h2}.{p2}.{fs(s)}"
    assert bad != token
    rejects(ES.verifier(clock), bad, "malformed")
    if bad.isascii():
        rejects(ES.verifier(clock), bad.encode(), "malformed")


# -- R4 strict header JSON ---------------------------------------------------------------
def _hdr_json(template: str) -> bytes:
    return template.replace("KID", ES.kid).encode()


R4_HEADERS: dict[str, bytes] = {
    "bom": b"\xef\xbb\xbf" + jbytes(ES.header()),
    "duplicate-alg": _hdr_json('{"alg":"HS256","alg":"ES256","kid":"KID","typ":"at+jwt"}'),
    "duplicate-alg-escaped": _hdr_json(
        '{"alg":"HS256","\\u0061lg":"ES256","kid":"KID","typ":"at+jwt"}'
    ),
    "duplicate-kid": _hdr_json('{"alg":"ES256","kid":"other","kid":"KID","typ":"at+jwt"}'),
    "duplicate-typ": _hdr_json('{"alg":"ES256","kid":"KID","typ":"JWT","typ":"at+jwt"}'),
    "array": jbytes(["ES256", ES.kid, "at+jwt"]),
    "string": b'"ES256"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "empty": b" ",
    "trailing-garbage": jbytes(ES.header()) + b"x",
    "two-objects": jbytes(ES.header()) + jbytes(ES.header()),
    "single-quotes": _hdr_json("{'alg':'ES256','kid':'KID','typ':'at+jwt'}"),
    "nested-object": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt","x":{}}'),
    "deep-nesting": b"[" * 5000 + b"]" * 5000,
    "deep-object-nesting": b'{"a":' * 3000 + b"1" + b"}" * 3000,
    "nan": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt","x":NaN}'),
    "infinity": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt","x":-Infinity}'),
    "invalid-utf8": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt"}').replace(
        b"at+jwt", b"at+jwt\xff"
    ),
    "overlong-utf8": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt"}').replace(
        b'"typ"', b'"typ\xc0\xaf"'
    ),
    "utf8-surrogate": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt"}').replace(
        b'"typ"', b'"typ\xed\xa0\x80"'
    ),
    "utf16": json.dumps(ES.header()).encode("utf-16"),
    "utf32": json.dumps(ES.header()).encode("utf-32"),
    "huge-int": _hdr_json('{"alg":"ES256","kid":"KID","typ":"at+jwt","x":' + "9" * 5000 + "}"),
}


@pytest.mark.parametrize("name", list(R4_HEADERS))
def test_r4_strict_header_json(v: Verifier, name: str) -> None:
    token = ES.token(R4_HEADERS[name])  # validly signed over these exact header bytes
    rejects(v, token, "malformed")


@pytest.mark.parametrize(
    "raw",
    [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":1,"a":1}', b"\xef\xbb\xbf{}"],
)
def test_r4_parse_json_object_refuses(raw: bytes) -> None:
    with pytest.raises(MalformedToken):
        parse_json_object(raw)


def test_r4_no_recursion_error_on_deep_header() -> None:
    for raw in (b"[" * 100_000, b'{"a":' * 100_000, b"[" * 3 + b"]" * 3):
        with pytest.raises(MalformedToken):
            parse_json_object(raw)


# -- R5 header allowlist -----------------------------------------------------------------
_ATTACKER = keyed("ES384").private  # any key not configured in the verifier


R5_MEMBERS: dict[str, dict[str, Any]] = {
    "crit-exp": {"crit": ["exp"], "exp": 1},
    "crit-empty": {"crit": []},
    "crit-b64": {"crit": ["b64"], "b64": False},
    "b64-false": {"b64": False},
    "b64-true": {"b64": True},
    "zip": {"zip": "DEF"},
    "cty-jwt": {"cty": "JWT"},
    "cty-json": {"cty": "json"},
    "jwk": {"jwk": ES.ring.jwks()["keys"][0]},
    "jku": {"jku": "https://attacker.example/jwks.json"},
    "jku-localhost": {"jku": "http://127.0.0.1:1/jwks"},
    "x5u": {"x5u": "https://attacker.example/cert.pem"},
    "x5c": {"x5c": ["MIIBszCCAVmgAwIBAgIUX"]},
    "x5t": {"x5t": "dGVzdA"},
    "x5t#S256": {"x5t#S256": "dGVzdA"},
    "enc": {"enc": "A256GCM"},
    "epk": {"epk": {"kty": "EC"}},
    "p2c": {"p2c": 1000000},
    "url": {"url": "https://attacker.example/"},
    "nonce": {"nonce": "n"},
    "unknown": {"foo": "bar"},
    "uppercase-alg": {"ALG": "none"},
    "empty-name": {"": "x"},
}


@pytest.mark.parametrize("name", list(R5_MEMBERS))
def test_r5_header_allowlist(v: Verifier, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def no_network(*_: Any, **__: Any) -> Any:
        raise AssertionError("the verifier tried to reach the network")

    monkeypatch.setattr("socket.create_connection", no_network)
    monkeypatch.setattr("socket.getaddrinfo", no_network)
    token = ES.token(ES.header(R5_MEMBERS[name]))  # signed by the *configured* key
    rejects(v, token, "malformed")


def test_r5_embedded_jwk_is_never_a_trust_input(v: Verifier) -> None:
    """CVE-2018-0114 style: the attacker signs with their own key and ships its JWK."""
    attacker = ECKey.import_key(_ATTACKER.public_key()).as_dict()
    for hdr in (
        {"alg": "ES384", "kid": ES.kid, "typ": "at+jwt", "jwk": attacker},
        {"alg": "ES384", "typ": "at+jwt", "jwk": attacker},
    ):
        token = ES.token(hdr, key=_ATTACKER, alg="ES384")
        rejects(v, token)


# -- R19 a JWS endpoint never decrypts ---------------------------------------------------
def _jwes() -> dict[str, str]:
    body = jbytes(claims())
    fake = ".".join([b64(jbytes(ES.header(enc="A256GCM"))), "", b64(b"iv" * 6), "AAAA", "AAAA"])
    return {
        "ecdh-es": jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A256GCM"}, body, ECKey.generate_key("P-256")
        ),
        "dir": jwe.encrypt_compact(
            {"alg": "dir", "enc": "A128GCM"}, body, OctKey.import_key(b"k" * 16)
        ),
        "fake-with-jws-header": fake,
    }


@pytest.mark.parametrize("kind", ["ecdh-es", "dir", "fake-with-jws-header"])
def test_r19_jwe_rejected_unopened(v: Verifier, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    token = _jwes()[kind]
    assert token.count(".") == 4

    def opened(*_: Any, **__: Any) -> Any:
        raise AssertionError("a JWE was handed to a decrypter")

    for fn in ("decrypt_compact", "decrypt_json", "extract_compact", "perform_decrypt"):
        monkeypatch.setattr(jwe, fn, opened)
    rejects(v, token, "malformed")
    rejects(v, token.encode(), "malformed")


def test_r19_issued_tokens_are_three_segment_jws(clock: FrozenClock) -> None:
    token = ES.issue(clock)
    assert token.count(".") == 2
    assert json.loads(unb64(token.split(".")[0]))["typ"] == "at+jwt"
    assert Verifier(ES.ring, issuer=ISS, audience=AUD, clock=clock).verify(token)
