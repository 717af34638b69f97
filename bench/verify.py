"""Side-by-side JWS benchmark: tokenward vs peers vs the bare ``cryptography`` floor.

For HS256, RS256, ES256 and EdDSA, in one process, it measures

* cold verify   tokenward (``cache_size=0``), every peer and the floor, all on the SAME
                token (made by tokenward), each configured with equivalent checks;
* cached verify tokenward's default verified-token cache, the same token repeatedly;
* sign          an access token with the same header (alg, kid, typ) and claims.

Every case is checked once before timing (a verifier must return the right claims and
reject a bad signature, a wrong audience, a wrong issuer and an expired token; a signed
token must verify under tokenward). Cases are interleaved round-robin, in shuffled order,
in many short rounds of batches sized to ~5 ms, so noise on shared cores hits all of them
alike. Batches are timed in thread CPU time by default (``--clock wall`` for wall time).
Reported: the median µs/op over the rounds, and ratios as the median of per-round paired
ratios (both cases timed within the same round), with their interquartile range.

    python bench/verify.py            # full run (~1–2 minutes)
    python bench/verify.py --quick    # smoke run
    python bench/verify.py --algs HS256,ES256
"""

from __future__ import annotations

import argparse
import binascii
import gc
import hmac
import json
import platform
import random
import secrets
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from itertools import repeat
from typing import Any

import jwt as pyjwt
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jose import jwk as jose_jwk
from jose import jwt as jose_jwt
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from tokenward import Issuer, KeyRing, Verifier

with warnings.catch_warnings():  # authlib.jose is deprecated and forces its warning on
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken

warnings.simplefilter("ignore")  # joserfc warns on every "EdDSA" use (RFC 9864)

ALGS = ("HS256", "RS256", "ES256", "EdDSA")
ISS = "https://issuer.example"
AUD = "api://bench"
SUB = "user-1"
CLIENT = "bench-client"
SCOPE = "read write"
TTL = 900
LEEWAY = 30
REQUIRED = frozenset({"iss", "sub", "aud", "exp", "iat", "jti", "client_id"})
PEERS = ("pyjwt", "joserfc", "jwcrypto", "python-jose", "authlib")
VERIFY_ROWS = ("tokenward", "floor", "floor-stdlib", *PEERS)
SIGN_ROWS = VERIFY_ROWS
KTY = {"HS256": "oct", "RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
DISTRIBUTIONS = {
    "tokenward": "tokenward",
    "pyjwt": "PyJWT",
    "joserfc": "joserfc",
    "jwcrypto": "jwcrypto",
    "python-jose": "python-jose",
    "authlib": "Authlib",
    "cryptography": "cryptography",
    "orjson": "orjson",
}

Fn = Callable[[Any], Any]


# -- shared material -------------------------------------------------------------------
@dataclass
class Material:
    """One key and one token per algorithm; every library works from these."""

    alg: str
    ring: KeyRing
    kid: str
    private: Any  # cryptography private key, or the HMAC secret
    public: Any  # cryptography public key, or the HMAC secret
    token: str
    header_b64: bytes
    claims: dict[str, Any]
    bad: dict[str, str] = field(default_factory=dict)  # name -> token that must fail


_TO_URL = bytes.maketrans(b"+/", b"-_")
_TO_STD = bytes.maketrans(b"-_", b"+/")


def b64e(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL)


def b64d(seg: bytes) -> bytes:
    """Lenient and fast (a2b_base64 ignores surplus padding): the floor, not a validator."""
    return binascii.a2b_base64(seg.translate(_TO_STD) + b"==")


def make_material(alg: str) -> Material:
    ring = KeyRing()
    key = ring.generate(alg, time.time())
    issuer = Issuer(ring, issuer=ISS)
    token = issuer.issue(SUB, AUD, client_id=CLIENT, scope=SCOPE)
    h, p, _ = token.encode().split(b".")
    m = Material(
        alg,
        ring,
        key.kid,
        ring.signing_key().material,
        ring.get(key.kid).key,
        token,
        h,
        json.loads(b64d(p)),
    )
    sig = token.rsplit(".", 1)[1]
    mid = len(sig) // 2
    m.bad["bad signature"] = (
        token[: -len(sig)] + sig[:mid] + ("A" if sig[mid] != "A" else "B") + sig[mid + 1 :]
    )
    m.bad["wrong audience"] = issuer.issue(SUB, "api://other", client_id=CLIENT, scope=SCOPE)
    m.bad["wrong issuer"] = Issuer(ring, issuer="https://evil.example").issue(
        SUB, AUD, client_id=CLIENT, scope=SCOPE
    )
    m.bad["expired"] = Issuer(ring, issuer=ISS, clock=lambda: time.time() - 7200).issue(
        SUB, AUD, client_id=CLIENT, scope=SCOPE
    )
    return m


def new_claims() -> dict[str, Any]:
    """What every sign case builds per token: same claims, same order as tokenward."""
    now = int(time.time())
    return {
        "iss": ISS,
        "sub": SUB,
        "aud": AUD,
        "iat": now,
        "exp": now + TTL,
        "jti": secrets.token_urlsafe(16),
        "client_id": CLIENT,
        "scope": SCOPE,
    }


# -- floor: the primitive + base64url + JSON + the same claim checks -------------------
def floor_primitives(
    m: Material, stdlib: bool
) -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    """(sign(data) -> raw JWS signature, verify(data, sig) raising on failure)."""
    if m.alg == "HS256":
        return _floor_hmac(m.private, stdlib)
    if m.alg == "RS256":
        pad, h = padding.PKCS1v15(), hashes.SHA256()
        return (lambda d: m.private.sign(d, pad, h), lambda d, s: m.public.verify(s, d, pad, h))
    if m.alg == "ES256":
        scheme = ec.ECDSA(hashes.SHA256())

        def es_sign(d: bytes) -> bytes:
            r, s = decode_dss_signature(m.private.sign(d, scheme))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        def es_verify(d: bytes, s: bytes) -> None:
            der = encode_dss_signature(int.from_bytes(s[:32], "big"), int.from_bytes(s[32:], "big"))
            m.public.verify(der, d, scheme)

        return es_sign, es_verify
    return m.private.sign, lambda d, s: m.public.verify(s, d)


def _floor_hmac(
    key: bytes, stdlib: bool
) -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    if stdlib:

        def std_sign(d: bytes) -> bytes:
            return hmac.digest(key, d, "sha256")

        def std_verify(d: bytes, s: bytes) -> None:
            if not hmac.compare_digest(hmac.digest(key, d, "sha256"), s):
                raise InvalidSignature

        return std_sign, std_verify
    sha256 = hashes.SHA256()

    def c_sign(d: bytes) -> bytes:
        h = chmac.HMAC(key, sha256)
        h.update(d)
        return h.finalize()

    def c_verify(d: bytes, s: bytes) -> None:
        h = chmac.HMAC(key, sha256)
        h.update(d)
        h.verify(s)

    return c_sign, c_verify


def floor_check(c: dict[str, Any], now: float) -> None:
    """The claim checks every verifier here is configured for."""
    if not c.keys() >= REQUIRED:
        raise ValueError("missing claim")
    exp, iat = c["exp"], c["iat"]
    if type(exp) is not int or type(iat) is not int:
        raise ValueError("exp/iat must be integers")
    if now >= exp + LEEWAY or iat > now + LEEWAY:
        raise ValueError("expired or issued in the future")
    if c["iss"] != ISS:
        raise ValueError("issuer")
    aud = c["aud"]
    if aud != AUD and not (type(aud) is list and AUD in aud):
        raise ValueError("audience")


def floor_cases(m: Material, stdlib: bool) -> tuple[Fn, Fn]:
    sign_raw, verify_raw = floor_primitives(m, stdlib)
    header = m.header_b64

    def verify(token: str) -> dict[str, Any]:
        t = token.encode()
        h, p, s = t.split(b".")
        if h != header:  # tokenward also answers a known header from its header cache
            raise ValueError("header")
        verify_raw(t[: len(h) + 1 + len(p)], b64d(s))
        claims = orjson.loads(b64d(p))
        floor_check(claims, time.time())
        return claims

    def sign(_: object) -> str:
        signing_input = header + b"." + b64e(orjson.dumps(new_claims()))
        return (signing_input + b"." + b64e(sign_raw(signing_input))).decode()

    return verify, sign


# -- tokenward -------------------------------------------------------------------------
def tokenward_cases(m: Material) -> dict[str, Fn]:
    issuer = Issuer(m.ring, issuer=ISS)
    cold = Verifier(m.ring, issuer=ISS, audience=AUD, cache_size=0)
    cached = Verifier(m.ring, issuer=ISS, audience=AUD)

    def sign(_: object) -> str:
        return issuer.issue(SUB, AUD, client_id=CLIENT, scope=SCOPE)

    return {"cold": cold.verify, "cached": cached.verify, "sign": sign}


# -- peers: each with its own API, keys imported once, checks pinned ------------------
def pyjwt_cases(m: Material) -> tuple[Fn, Fn]:
    algs, opts = [m.alg], {"require": sorted(REQUIRED)}
    headers = {"kid": m.kid, "typ": "at+jwt"}

    def verify(token: str) -> dict[str, Any]:
        return pyjwt.decode(
            token, m.public, algorithms=algs, audience=AUD, issuer=ISS, leeway=LEEWAY, options=opts
        )

    def sign(_: object) -> str:
        return pyjwt.encode(new_claims(), m.private, algorithm=m.alg, headers=headers)

    return verify, sign


def joserfc_cases(m: Material) -> tuple[Fn, Fn]:
    cls = {"oct": OctKey, "RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[KTY[m.alg]]
    pub, priv = cls.import_key(m.public), cls.import_key(m.private)
    algs, header = [m.alg], {"alg": m.alg, "kid": m.kid, "typ": "at+jwt"}
    essential = {name: {"essential": True} for name in REQUIRED}
    registry = joserfc_jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        **{
            **essential,
            "iss": {"essential": True, "value": ISS},
            "aud": {"essential": True, "value": AUD},
        },
    )

    def verify(token: str) -> dict[str, Any]:
        tok = joserfc_jwt.decode(token, pub, algorithms=algs)
        registry.validate(tok.claims)
        return tok.claims

    def sign(_: object) -> str:
        return joserfc_jwt.encode(header, new_claims(), priv, algorithms=algs)

    return verify, sign


def jwcrypto_cases(m: Material) -> tuple[Fn, Fn]:
    if m.alg == "HS256":
        pub = priv = jwcrypto_jwk.JWK(kty="oct", k=b64e(m.public).decode())
    else:
        pub = jwcrypto_jwk.JWK.from_pyca(m.public)
        priv = jwcrypto_jwk.JWK.from_pyca(m.private)
    algs, header = [m.alg], {"alg": m.alg, "kid": m.kid, "typ": "at+jwt"}
    check = {"iss": ISS, "aud": AUD} | {n: None for n in REQUIRED - {"iss", "aud"}}

    def verify(token: str) -> dict[str, Any]:
        t = jwcrypto_jwt.JWT(algs=algs, check_claims=check, expected_type="JWS")
        t.leeway = LEEWAY
        t.deserialize(token, pub)
        return json.loads(t.claims)

    def sign(_: object) -> str:
        t = jwcrypto_jwt.JWT(header=header, claims=new_claims())
        t.make_signed_token(priv)
        return t.serialize()

    return verify, sign


def python_jose_cases(m: Material) -> tuple[Fn, Fn] | None:
    if m.alg == "EdDSA":
        return None  # python-jose has no EdDSA
    pub, priv = jose_jwk.construct(m.public, m.alg), jose_jwk.construct(m.private, m.alg)
    algs, headers = [m.alg], {"kid": m.kid, "typ": "at+jwt"}
    opts = {f"require_{n}": True for n in ("iat", "exp", "iss", "aud", "sub", "jti")}
    opts["leeway"] = LEEWAY

    def verify(token: str) -> dict[str, Any]:
        return jose_jwt.decode(token, pub, algorithms=algs, audience=AUD, issuer=ISS, options=opts)

    def sign(_: object) -> str:
        return jose_jwt.encode(new_claims(), priv, algorithm=m.alg, headers=headers)

    return verify, sign


def authlib_cases(m: Material) -> tuple[Fn, Fn]:
    jwt = JsonWebToken([m.alg])
    opts = {"kty": KTY[m.alg]}
    pub, priv = JsonWebKey.import_key(m.public, opts), JsonWebKey.import_key(m.private, opts)
    header = {"alg": m.alg, "kid": m.kid, "typ": "at+jwt"}
    claims_options = {n: {"essential": True} for n in REQUIRED}
    claims_options["iss"] = {"essential": True, "value": ISS}
    claims_options["aud"] = {"essential": True, "value": AUD}

    def verify(token: str) -> dict[str, Any]:
        claims = jwt.decode(token, pub, claims_options=claims_options)
        claims.validate(leeway=LEEWAY)
        return claims

    def sign(_: object) -> str:
        return jwt.encode(header, new_claims(), priv).decode()

    return verify, sign


PEER_FACTORIES: dict[str, Callable[[Material], tuple[Fn, Fn] | None]] = {
    "pyjwt": pyjwt_cases,
    "joserfc": joserfc_cases,
    "jwcrypto": jwcrypto_cases,
    "python-jose": python_jose_cases,
    "authlib": authlib_cases,
}


# -- correctness before timing ---------------------------------------------------------
def check_verifier(name: str, m: Material, fn: Fn) -> None:
    got = dict(fn(m.token))
    if got != m.claims:
        raise SystemExit(f"{name}/{m.alg}: verify returned {got!r}, expected {m.claims!r}")
    for what, bad in m.bad.items():
        try:
            fn(bad)
        except Exception:  # each library raises its own error type
            continue
        raise SystemExit(f"{name}/{m.alg}: accepted a token with a {what}")


def check_signer(name: str, m: Material, fn: Fn, judge: Verifier) -> None:
    token = fn(None)
    header = json.loads(b64d(token.split(".")[0].encode()))
    if header != {"alg": m.alg, "kid": m.kid, "typ": "at+jwt"}:
        raise SystemExit(f"{name}/{m.alg}: signed header is {header!r}")
    claims = judge.verify(token)  # raises unless tokenward accepts it
    want = {"iss": ISS, "sub": SUB, "aud": AUD, "client_id": CLIENT, "scope": SCOPE}
    if {k: claims.get(k) for k in want} != want or claims["exp"] - claims["iat"] != TTL:
        raise SystemExit(f"{name}/{m.alg}: signed claims are {claims!r}")


# -- timing ----------------------------------------------------------------------------
@dataclass
class Case:
    alg: str
    mode: str  # cold | cached | sign
    lib: str
    fn: Fn
    arg: Any
    n: int = 1
    samples: list[float] = field(default_factory=list)  # µs/op, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range as a fraction of the median."""
        if len(self.samples) < 4:
            return 0.0
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}
_clock = CLOCKS["cpu"]  # set from --clock in main()


def batch(fn: Fn, arg: Any, n: int) -> float:
    """Seconds for n calls, with the cyclic GC paused (as timeit does).

    The default clock is this thread's CPU time: on shared cores a batch that was
    descheduled is not charged for the time other processes ran.
    """
    gc.disable()
    try:
        t0 = _clock()
        for _ in repeat(None, n):
            fn(arg)
        return _clock() - t0
    finally:
        gc.enable()


def calibrate(case: Case, target: float) -> None:
    n = 1
    while (t := batch(case.fn, case.arg, n)) < target / 5:
        n *= 4
    case.n = max(1, round(n * target / t))


def run_rounds(cases: list[Case], rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    order = list(cases)
    for _ in range(rounds):
        rng.shuffle(order)  # no case always runs first, or right after a slow one
        for c in order:
            c.samples.append(batch(c.fn, c.arg, c.n) / c.n * 1e6)
        gc.collect()


def harness_overhead(target: float, rounds: int) -> float:
    c = Case("-", "-", "noop", lambda _: None, None)
    calibrate(c, target)
    run_rounds([c], rounds, 0)
    return c.median


# -- building and running one algorithm ------------------------------------------------
def build_cases(m: Material) -> list[Case]:
    judge = Verifier(m.ring, issuer=ISS, audience=AUD, cache_size=0)
    tw = tokenward_cases(m)
    verify: dict[str, Fn] = {"tokenward": tw["cold"]}
    sign: dict[str, Fn] = {"tokenward": tw["sign"]}
    verify["floor"], sign["floor"] = floor_cases(m, stdlib=False)
    if m.alg == "HS256":
        verify["floor-stdlib"], sign["floor-stdlib"] = floor_cases(m, stdlib=True)
    for name, factory in PEER_FACTORIES.items():
        pair = factory(m)
        if pair is not None:
            verify[name], sign[name] = pair
    cases = []
    for name, fn in verify.items():
        check_verifier(name, m, fn)
        cases.append(Case(m.alg, "cold", name, fn, m.token))
    check_verifier("tokenward-cached", m, tw["cached"])
    tw["cached"](m.token)  # warm the cache
    cases.append(Case(m.alg, "cached", "tokenward", tw["cached"], m.token))
    for name, fn in sign.items():
        check_signer(name, m, fn, judge)
        cases.append(Case(m.alg, "sign", name, fn, None))
    return cases


# -- report ----------------------------------------------------------------------------
Key = tuple[str, str]  # (mode, lib) within one algorithm


@dataclass
class Results:
    """Medians, and ratios taken per round (both cases timed within the same ~0.1 s) so that
    slow drift on a shared machine cancels; the median of those paired ratios is reported."""

    cases: dict[tuple[str, str, str], Case]
    algs: list[str]

    def get(self, alg: str, mode: str, lib: str) -> float | None:
        c = self.cases.get((alg, mode, lib))
        return c.median if c else None

    def paired(self, alg: str, a: Key, b: Key) -> list[float] | None:
        ca, cb = self.cases.get((alg, *a)), self.cases.get((alg, *b))
        if ca is None or cb is None:
            return None
        return sorted(x / y for x, y in zip(ca.samples, cb.samples, strict=True))

    def ratio(self, alg: str, a: Key, b: Key) -> float | None:
        r = self.paired(alg, a, b)
        return statistics.median(r) if r else None

    def ratio_iqr(self, alg: str, a: Key, b: Key) -> str:
        r = self.paired(alg, a, b)
        if not r or len(r) < 4:
            return ""
        q = statistics.quantiles(r, n=4)
        digits = 0 if q[0] >= 10 else 2
        return f"{q[0]:.{digits}f}–{q[2]:.{digits}f}"


def fmt_cell(v: float | None, ratio: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.1f}" + (f" ({ratio:.2f}×)" if ratio else "")


def header_rows(title: str, algs: list[str]) -> list[str]:
    return [
        f"### {title}",
        "",
        "| library | " + " | ".join(algs) + " |",
        "|---|" + "---:|" * len(algs),
    ]


def table(res: Results, mode: str, title: str) -> list[str]:
    lines = header_rows(f"{title} — median µs/op (× floor)", res.algs)
    for lib in VERIFY_ROWS:
        if lib == "floor-stdlib" and "HS256" not in res.algs:
            continue
        cells = [
            fmt_cell(res.get(a, mode, lib), res.ratio(a, (mode, lib), (mode, "floor")))
            for a in res.algs
        ]
        if lib == "floor-stdlib":
            cells = [c if a == "HS256" else "—" for a, c in zip(res.algs, cells, strict=True)]
        lines.append(f"| {lib} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def fastest_peer(res: Results, alg: str) -> str:
    vals = [(v, p) for p in PEERS if (v := res.get(alg, "cold", p)) is not None]
    return min(vals)[1]


def cached_table(res: Results) -> list[str]:
    lines = [
        "### Cached verify (tokenward, same token) vs the fastest peer's cold verify",
        "",
        "| alg | tokenward cached µs | fastest peer | peer µs | speedup |",
        "|---|---:|---|---:|---:|",
    ]
    for a in res.algs:
        peer = fastest_peer(res, a)
        cv, pv = res.get(a, "cached", "tokenward") or 0.0, res.get(a, "cold", peer) or 0.0
        speedup = res.ratio(a, ("cold", peer), ("cached", "tokenward")) or 0.0
        lines.append(f"| {a} | {cv:.2f} | {peer} | {pv:,.1f} | {speedup:,.0f}× |")
    return [*lines, ""]


def peer_ratio_table(res: Results) -> list[str]:
    lines = header_rows("Relative to the floor (cold verify / sign)", res.algs)
    for lib in ("tokenward", *PEERS):
        cells = []
        for a in res.algs:
            v = res.ratio(a, ("cold", lib), ("cold", "floor"))
            s = res.ratio(a, ("sign", lib), ("sign", "floor"))
            cells.append("n/a" if v is None or s is None else f"{v:.2f}× / {s:.2f}×")
        lines.append(f"| {lib} | " + " | ".join(cells) + " |")
    return [*lines, ""]


Row = tuple[str, str, str, str, str, bool]  # target, alg, measured, IQR, limit, passed


def ratio_row(res: Results, label: str, alg: str, a: Key, b: Key, limit: float) -> Row:
    r = res.ratio(alg, a, b) or 0.0
    return (label, alg, f"{r:.3f}×", res.ratio_iqr(alg, a, b), f"{limit:.2f}×", r <= limit)


def targets(res: Results) -> list[Row]:
    rows = []
    tw_cached = ("cached", "tokenward")
    for a in res.algs:
        floors = ["floor", "floor-stdlib"] if a == "HS256" else ["floor"]
        for mode, label in (("cold", "cold verify"), ("sign", "sign")):
            for f in floors:
                t = f"{label} ≤ 1.15× {f}"
                rows.append(ratio_row(res, t, a, (mode, "tokenward"), (mode, f), 1.15))
        cv = res.cases[(a, *tw_cached)]
        q = statistics.quantiles(cv.samples, n=4) if len(cv.samples) >= 4 else [0, 0, 0]
        iqr = f"{q[0]:.2f}–{q[2]:.2f}"
        rows.append(("cached verify ≤ 3 µs", a, f"{cv.median:.2f} µs", iqr, "3 µs", cv.median <= 3))
        peer = fastest_peer(res, a)
        sp = res.ratio(a, ("cold", peer), tw_cached) or 0.0
        iqr = res.ratio_iqr(a, ("cold", peer), tw_cached)
        rows.append(
            (
                f"cached ≥ 10× faster than fastest peer ({peer})",
                a,
                f"{sp:,.0f}×",
                iqr,
                "10×",
                sp >= 10,
            )
        )
        if a == "HS256":
            t = "cold verify near 0.3× PyJWT (pass ≤ 0.33×)"
            rows.append(ratio_row(res, t, a, ("cold", "tokenward"), ("cold", "pyjwt"), 0.33))
    return rows


def versions() -> list[str]:
    out = [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {backend.openssl_version_text()}"
    ]
    out.append(", ".join(f"{d} {version(d)}" for d in DISTRIBUTIONS.values()))
    return out


def report(res: Results, args: argparse.Namespace, overhead: float, elapsed: float) -> None:
    print(f"# tokenward JWS benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    for line in versions():
        print(f"- {line}")
    print(
        f"- clock: {args.clock} ({'thread CPU time' if args.clock == 'cpu' else 'perf_counter'}), "
        f"rounds: {args.rounds}, batch target {args.target_ms} ms, "
        f"harness overhead {overhead * 1000:.0f} ns/call (not subtracted), "
        f"wall time {elapsed:.0f} s\n"
    )
    out: list[str] = []
    out += table(res, "cold", "Cold verify (tokenward cache_size=0)")
    out += table(res, "sign", "Sign")
    out += cached_table(res)
    out += peer_ratio_table(res)
    rows = targets(res)
    out += [
        "### Targets (ratios: median of per-round paired ratios; IQR = their quartiles)",
        "",
        "| target | alg | measured | IQR | limit | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    out += [
        f"| {t} | {a} | {m} | {iqr} | {lim} | {'PASS' if ok else 'MISS'} |"
        for t, a, m, iqr, lim, ok in rows
    ]
    print("\n".join(out))
    worst = max(res.cases.values(), key=lambda c: c.spread)
    print(
        f"\nWidest interquartile range over the rounds: {worst.spread:.0%} of the median "
        f"({worst.lib} {worst.mode} {worst.alg}); median over all cases "
        f"{statistics.median(c.spread for c in res.cases.values()):.0%}."
    )
    print(f"PASS {sum(r[5] for r in rows)} / MISS {sum(not r[5] for r in rows)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few short rounds (smoke test)")
    p.add_argument("--algs", default=",".join(ALGS), help=f"comma list of {', '.join(ALGS)}")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 100; quick 5)")
    p.add_argument("--target-ms", type=float, default=None, help="ms per batch (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed for the per-round shuffle")
    p.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="cpu (default) or wall time"
    )
    args = p.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    args.rounds = args.rounds or (5 if args.quick else 100)
    args.target_ms = args.target_ms or (3.0 if args.quick else 5.0)
    algs = [a.strip() for a in args.algs.split(",") if a.strip()]
    if unknown := set(algs) - set(ALGS):
        p.error(f"unknown algorithm(s): {', '.join(sorted(unknown))}")
    start, target = time.perf_counter(), args.target_ms / 1000
    overhead = harness_overhead(target, args.rounds)
    cases: dict[tuple[str, str, str], Case] = {}
    for alg in algs:
        group = build_cases(make_material(alg))
        for c in group:
            calibrate(c, target)
        print(
            f"{alg}: {len(group)} cases checked; timing {args.rounds} rounds…",
            file=sys.stderr,
            flush=True,
        )
        run_rounds(group, args.rounds, args.seed)
        cases.update({(c.alg, c.mode, c.lib): c for c in group})
    report(Results(cases, algs), args, overhead, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
