"""A corpus of forged tokens — the known JWT attacks, one row each — and legit controls.

Every forged row must raise InvalidToken (with the listed code, where one is listed);
every control must verify. Rows name the attack; the advisories they come from are in
the SECURITY.md rule tests (test_rules*.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.jwk import ECKey, OctKey

from tests.security.forge import (
    AUD,
    DROP,
    EC_SIZE,
    ISS,
    ORDERS,
    T0,
    b64,
    claims,
    der_sig,
    ec_parts,
    ec_raw,
    jbytes,
    keyed,
    public_encodings,
    sign,
    unb64,
    with_sig,
)
from tokenward import FrozenClock, InvalidToken, Issuer, Verifier

Builder = Callable[[], Any]
ES, HS, RS = keyed("ES256"), keyed("HS256"), keyed("RS256")
ATTACKER = keyed("ES384").private  # a key no verifier below trusts for ES256


def _sig(token: str) -> bytes:
    return unb64(token.split(".")[2])


def _ecdsa(alg: str, fn: Callable[[int, int, int], tuple[int, int]]) -> str:
    k = keyed(alg)
    good = k.token()
    r, s = ec_parts(_sig(good))
    return with_sig(good, ec_raw(*fn(r, s, ORDERS[alg]), EC_SIZE[alg]))


def _none(alg: str, sig: str) -> str:
    h, p = b64(jbytes(ES.header(alg=alg))), b64(jbytes(claims()))
    return f"{h}.{p}.{sig}"


def _pad(token: str) -> str:
    return ".".join(seg + "=" * (-len(seg) % 4) for seg in token.split("."))


def _std(token: str) -> str:
    for _ in range(50):
        out = token.translate(str.maketrans("-_", "+/"))
        if out != token:
            return out
        token = ES.token()
    raise AssertionError("no token with '-' or '_'")


def _dup(template: str) -> bytes:
    return template.replace("KID", ES.kid).encode()


def _jwe() -> str:
    return jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A256GCM"}, jbytes(claims()), ECKey.generate_key("P-256")
    )


def _jwe_dir_with_hmac_secret() -> str:
    return jwe.encrypt_compact(
        {"alg": "dir", "enc": "A256GCM"}, jbytes(claims()), OctKey.import_key(HS.private[:32])
    )


def _oversized() -> str:
    return ES.token(payload=claims(pad="x" * 7000))


def _attacker_p256() -> Any:
    return ec.generate_private_key(ec.SECP256R1())  # same kid, same alg, wrong key


def _escalated() -> str:
    good = ES.token()
    h, _, s = good.split(".")
    return f"{h}.{b64(jbytes(claims(sub='admin', scope='admin')))}.{s}"


# (name, verifier alg, builder, code or None)
FORGED: list[tuple[str, str, Builder, str | None]] = [
    *[
        (f"alg-{a}-sig-{s or 'empty'}", "ES256", lambda a=a, s=s: _none(a, s), None)
        for a in ("none", "None", "NONE", "nOnE")
        for s in ("", "AAAA")
    ],
    ("alg-none-es256-sig", "ES256", lambda: ES.token(ES.header(alg="none")), "invalid_algorithm"),
    *[
        (
            f"hs256-keyed-with-{alg}-{enc}",
            alg,
            lambda alg=alg, enc=enc: keyed(alg).token(
                keyed(alg).header(alg="HS256"), key=public_encodings(alg)[enc], alg="HS256"
            ),
            "invalid_algorithm",
        )
        for alg in ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
        for enc in public_encodings(alg)
    ],
    ("ps256-on-rs256-key", "RS256", lambda: RS.token(RS.header(alg="PS256")), "invalid_algorithm"),
    ("es384-on-es256-key", "ES256", lambda: ES.token(ES.header(alg="ES384")), "invalid_algorithm"),
    ("hs512-on-hs256-key", "HS256", lambda: HS.token(HS.header(alg="HS512")), "invalid_algorithm"),
    (
        "alg-lowercase",
        "ES256",
        lambda: ES.token(ES.header(alg="es256"), alg="ES256"),
        "invalid_algorithm",
    ),
    (
        "embedded-jwk-attacker-key",
        "ES256",
        lambda: ES.token(
            ES.header(jwk=ECKey.import_key(ATTACKER.public_key()).as_dict(), alg="ES384"),
            key=ATTACKER,
            alg="ES384",
        ),
        "malformed",
    ),
    (
        "embedded-jwk-own-key",
        "ES256",
        lambda: ES.token(ES.header(jwk=ES.ring.jwks()["keys"][0])),
        "malformed",
    ),
    (
        "jku",
        "ES256",
        lambda: ES.token(ES.header(jku="https://attacker.example/jwks.json")),
        "malformed",
    ),
    (
        "x5u",
        "ES256",
        lambda: ES.token(ES.header(x5u="https://attacker.example/c.pem")),
        "malformed",
    ),
    (
        "x5c",
        "ES256",
        lambda: ES.token(ES.header(x5c=["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"])),
        "malformed",
    ),
    (
        "kid-path-traversal",
        "ES256",
        lambda: ES.token(ES.header(kid="../../../dev/null")),
        "malformed",
    ),
    (
        "kid-url",
        "ES256",
        lambda: ES.token(ES.header(kid="https://attacker.example/k")),
        "malformed",
    ),
    ("kid-sql", "ES256", lambda: ES.token(ES.header(kid="x' UNION SELECT 'k")), "malformed"),
    ("kid-empty", "ES256", lambda: ES.token(ES.header(kid="")), "malformed"),
    ("kid-unknown", "ES256", lambda: ES.token(ES.header(kid="nobody")), "unknown_kid"),
    ("kid-missing", "ES256", lambda: ES.token(ES.header(kid=DROP)), "malformed"),
    *[
        (
            f"psychic-r-s-zero-{alg}",
            alg,
            lambda alg=alg: _ecdsa(alg, lambda r, s, n: (0, 0)),
            "bad_signature",
        )
        for alg in EC_SIZE
    ],
    ("ecdsa-r-equals-n", "ES256", lambda: _ecdsa("ES256", lambda r, s, n: (n, s)), "bad_signature"),
    ("ecdsa-s-equals-n", "ES384", lambda: _ecdsa("ES384", lambda r, s, n: (r, n)), "bad_signature"),
    (
        "ecdsa-r-plus-n",
        "ES512",
        lambda: _ecdsa("ES512", lambda r, s, n: (r + n, s)),
        "bad_signature",
    ),
    *[
        (
            f"ecdsa-der-{alg}",
            alg,
            lambda alg=alg: with_sig(keyed(alg).token(), der_sig(_sig(keyed(alg).token()))),
            "bad_signature",
        )
        for alg in EC_SIZE
    ],
    (
        "ecdsa-zero-padded",
        "ES256",
        lambda: with_sig(t := ES.token(), ec_raw(*ec_parts(_sig(t)), 33)),
        "bad_signature",
    ),
    ("hmac-truncated", "HS256", lambda: with_sig(t := HS.token(), _sig(t)[:16]), "bad_signature"),
    ("signature-stripped", "ES256", lambda: ES.token().rsplit(".", 1)[0] + ".", "malformed"),
    ("signature-by-attacker", "ES256", lambda: ES.token(key=_attacker_p256()), "bad_signature"),
    ("claims-escalated-old-sig", "ES256", _escalated, "bad_signature"),
    ("b64-padded", "ES256", lambda: _pad(ES.token(payload=claims(pad="xx"))), "malformed"),
    ("b64-std-alphabet", "ES256", lambda: _std(ES.token()), "malformed"),
    ("b64-whitespace", "ES256", lambda: ES.token().replace(".", ". ", 1), "malformed"),
    (
        "dup-alg",
        "ES256",
        lambda: ES.token(_dup('{"alg":"HS256","alg":"ES256","kid":"KID","typ":"at+jwt"}')),
        "malformed",
    ),
    (
        "dup-kid",
        "ES256",
        lambda: ES.token(_dup('{"alg":"ES256","kid":"x","kid":"KID","typ":"at+jwt"}')),
        "malformed",
    ),
    ("crit-unknown", "ES256", lambda: ES.token(ES.header(crit=["exp"], exp=1)), "malformed"),
    ("crit-b64", "ES256", lambda: ES.token(ES.header(crit=["b64"], b64=False)), "malformed"),
    ("b64-false", "ES256", lambda: ES.token(ES.header(b64=False)), "malformed"),
    ("zip", "ES256", lambda: ES.token(ES.header(zip="DEF")), "malformed"),
    ("cty-jwt-nested", "ES256", lambda: ES.token(ES.header(cty="JWT")), "malformed"),
    (
        "exp-numeric-string",
        "ES256",
        lambda: ES.token(payload=claims(exp="9999999999")),
        "invalid_claims",
    ),
    ("exp-missing", "ES256", lambda: ES.token(payload=claims(exp=DROP)), "invalid_claims"),
    ("exp-null", "ES256", lambda: ES.token(payload=claims(exp=None)), "invalid_claims"),
    ("expired", "ES256", lambda: ES.token(payload=claims(exp=int(T0) - 31)), "expired"),
    ("nbf-future", "ES256", lambda: ES.token(payload=claims(nbf=int(T0) + 3600)), "not_yet_valid"),
    ("iat-future", "ES256", lambda: ES.token(payload=claims(iat=int(T0) + 3600)), "not_yet_valid"),
    (
        "iss-wrong",
        "ES256",
        lambda: ES.token(payload=claims(iss="https://attacker.example")),
        "invalid_claims",
    ),
    ("iss-case", "ES256", lambda: ES.token(payload=claims(iss=ISS.upper())), "invalid_claims"),
    (
        "iss-trailing-slash",
        "ES256",
        lambda: ES.token(payload=claims(iss=ISS + "/")),
        "invalid_claims",
    ),
    (
        "aud-wrong",
        "ES256",
        lambda: ES.token(payload=claims(aud="https://other.example")),
        "invalid_claims",
    ),
    ("aud-missing", "ES256", lambda: ES.token(payload=claims(aud=DROP)), "invalid_claims"),
    (
        "aud-array-without-us",
        "ES256",
        lambda: ES.token(payload=claims(aud=["https://x.example"])),
        "invalid_claims",
    ),
    ("typ-jwt", "ES256", lambda: ES.token(ES.header(typ="JWT")), "wrong_type"),
    ("typ-missing", "ES256", lambda: ES.token(ES.header(typ=DROP)), "wrong_type"),
    ("typ-refresh", "ES256", lambda: ES.token(ES.header(typ="rt+jwt")), "wrong_type"),
    (
        "typ-id-token",
        "ES256",
        lambda: ES.token(ES.header(typ="JWT"), claims(aud="client")),
        "wrong_type",
    ),
    ("oversized", "ES256", _oversized, "malformed"),
    ("jwe-at-jws-endpoint", "ES256", _jwe, "malformed"),
    ("jwe-dir-hmac-secret", "HS256", _jwe_dir_with_hmac_secret, "malformed"),
    (
        "json-serialization",
        "ES256",
        lambda: json.dumps(
            dict(zip(("protected", "payload", "signature"), ES.token().split("."), strict=True))
        ),
        "malformed",
    ),
]


def _verifiers(alg: str, clock: FrozenClock) -> list[Verifier]:
    k = keyed(alg)
    out = [k.verifier(clock)]
    if not alg.startswith("HS"):
        out.append(Verifier(k.ring.jwks(), issuer=ISS, audience=AUD, clock=clock))
    return out


@pytest.mark.parametrize(
    ("alg", "build", "code"), [pytest.param(a, b, c, id=name) for name, a, b, c in FORGED]
)
def test_forged_token_rejected(
    clock: FrozenClock, alg: str, build: Builder, code: str | None
) -> None:
    token = build()
    for v in _verifiers(alg, clock):
        with pytest.raises(InvalidToken) as info:
            v.verify(token)
        assert (info.value.error, info.value.status) == ("invalid_token", 401)
        if code is not None:
            assert info.value.code == code, info.value.detail


CONTROL_ALGS = ("HS256", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")


@pytest.mark.parametrize("alg", CONTROL_ALGS)
def test_control_issued_token_accepted(clock: FrozenClock, alg: str) -> None:
    token = keyed(alg).issue(clock)
    for v in _verifiers(alg, clock):
        assert v.verify(token)["sub"] == "alice"


@pytest.mark.parametrize("alg", CONTROL_ALGS)
def test_control_hand_signed_token_accepted(clock: FrozenClock, alg: str) -> None:
    """Signed here with cryptography directly: a cross-check of the library's algorithms."""
    k = keyed(alg)
    h, p = b64(jbytes(k.header())), b64(jbytes(claims()))
    token = f"{h}.{p}.{b64(sign(alg, k.private, f'{h}.{p}'.encode()))}"
    for v in _verifiers(alg, clock):
        assert v.verify(token)["client_id"] == "c1"


CONTROLS: dict[str, Builder] = {
    "aud-array": lambda: ES.token(payload=claims(aud=[AUD])),
    "aud-array-among-others": lambda: ES.token(payload=claims(aud=["https://x.example", AUD])),
    "typ-application-at-jwt": lambda: ES.token(ES.header(typ="application/at+jwt")),
    "nbf-now": lambda: ES.token(payload=claims(nbf=int(T0))),
    "nbf-within-leeway": lambda: ES.token(payload=claims(nbf=int(T0) + 30)),
    "exp-float": lambda: ES.token(payload=claims(exp=T0 + 60.5)),
    "expired-within-leeway": lambda: ES.token(payload=claims(exp=int(T0) - 29)),
    "header-member-order": lambda: ES.token({"typ": "at+jwt", "kid": ES.kid, "alg": "ES256"}),
    "extra-private-claims": lambda: ES.token(payload=claims(roles=["a"], nested={"x": 1})),
    "no-scope": lambda: ES.token(payload=claims(scope=DROP)),
    "issued-with-aud-array": lambda: Issuer(ES.ring, issuer=ISS, clock=FrozenClock(T0)).issue(
        "alice", ["https://x.example", AUD], client_id="c1"
    ),
}


@pytest.mark.parametrize("name", list(CONTROLS))
def test_control_accepted(clock: FrozenClock, name: str) -> None:
    for v in _verifiers("ES256", clock):
        assert v.verify(CONTROLS[name]())["iss"] == ISS
