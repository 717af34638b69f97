"""Strict compact JWS (RFC 7515 §3.1, §7.1) — the verify hot path (SECURITY.md R1–R12, R19).

Everything that can be decided without cryptography is decided first, in order of cost:
size, dot count, alphabet, header, key, algorithm; only then the signature over the exact
received bytes; only then is the payload parsed, by the caller (R4, R12).

A token whose exact header segment already came with a verified token takes a fast path
(:meth:`JWSVerifier.verify`): one translate and a strict base64 decode per segment check
the alphabet and decode at once (so the payload's base64, never its JSON, is decoded
before the signature is checked). It accepts exactly what the strict path accepts; on
anything unusual it hands the token to the strict path, which decides and words the refusal.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenward.errors import (
    InvalidAlgorithm,
    InvalidSignature,
    KeyNotFound,
    MalformedToken,
    WrongTokenType,
)
from tokenward.jose.algorithms import ALGORITHMS, Algorithm, BoundVerify

__all__ = [
    "DEFAULT_MAX_SIZE",
    "KID_PATTERN",
    "Header",
    "JWSVerifier",
    "KeyLookup",
    "VerifyKey",
    "b64decode",
    "b64encode",
    "encode_header",
    "parse_header",
    "parse_json_object",
    "sign_compact",
]

DEFAULT_MAX_SIZE = 8192  # R1
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_TO_STD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")
# base64url -> standard base64 in which '+', '/' and '=' (not base64url) become '!', which
# strict a2b_base64 refuses like any other foreign byte: one translate + one strict decode
# check the alphabet (R3) and decode a segment (the verify fast path).
_TO_STD_STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")
_STD_INDEX = bytes(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".find(bytes([c])) & 0x3F
    for c in range(256)
)
_PAD = (b"", b"", b"==", b"=")
KID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\Z")  # R6: never a path, URL or query
_ALLOWED_MEMBERS = frozenset({"alg", "kid", "typ"})  # R5
_HEADER_CACHE_MAX = 512


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A verification key bound to exactly one algorithm (R7)."""

    kid: str
    alg: Algorithm
    key: Any = None  # public key object, or the HMAC secret (never in repr)
    # alg.verify with this key bound, prepared once (HMAC: the keyed state).
    check: BoundVerify = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", self.alg.verifier(self.key))

    def __repr__(self) -> str:
        return f"VerifyKey(kid={self.kid!r}, alg={self.alg.name!r})"


@dataclass(frozen=True, slots=True)
class Header:
    alg: str
    kid: str
    typ: str


class KeyLookup(Protocol):
    def get(self, kid: str, /) -> VerifyKey | None: ...


def b64encode(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL)


def b64decode(seg: bytes) -> bytes:
    """Strict base64url (R3). The caller has already checked the alphabet."""
    rem = len(seg) % 4
    if rem == 1:
        raise MalformedToken("base64url segment has an impossible length")
    if rem:
        # Canonical encoding: the unused low bits of the last character must be zero.
        mask = 0x0F if rem == 2 else 0x03
        if _INDEX[seg[-1]] & mask:
            raise MalformedToken("base64url segment is not canonical")
        seg += b"=" * (4 - rem)
    return binascii.a2b_base64(seg.translate(_TO_STD))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("duplicate member in JOSE header")
    return obj


def _reject_constant(name: str) -> Any:
    raise MalformedToken(f"{name} is not JSON")


def parse_json_object(raw: bytes, *, max_depth: int = 1) -> dict[str, Any]:
    """Strict JSON object (R4): UTF-8, no BOM, no duplicates, no NaN/Infinity, bounded depth."""
    if raw[:3] == b"\xef\xbb\xbf":
        raise MalformedToken("byte-order mark in JSON")
    # Depth bound before parsing, so deep nesting can never reach RecursionError.
    if raw.count(b"{") + raw.count(b"[") > max_depth:
        raise MalformedToken("JOSE header is nested")
    try:
        text = raw.decode("utf-8")
        obj = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedToken("JOSE header is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise MalformedToken("JOSE header is not a JSON object")
    return obj


def parse_header(seg: bytes, typs: frozenset[str]) -> Header:
    """Decode and check a protected header against R4, R5, R6, R8 and R17."""
    obj = parse_json_object(b64decode(seg))
    if "crit" in obj:
        raise MalformedToken("crit header parameter is not supported")  # R5
    extra = obj.keys() - _ALLOWED_MEMBERS
    if extra:
        raise MalformedToken(f"header member not allowed: {sorted(extra)[0][:32]!r}")
    alg, kid, typ = obj.get("alg"), obj.get("kid"), obj.get("typ")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidAlgorithm("algorithm not allowed")  # R8: 'none' is not in the table
    if not isinstance(kid, str) or not KID_PATTERN.match(kid):
        raise MalformedToken("kid missing or not of the allowed form")
    if not isinstance(typ, str) or typ.lower() not in typs:
        raise WrongTokenType("typ is not accepted here")  # R17
    return Header(alg, kid, typ)


class JWSVerifier:
    """Verifies compact JWS against keys found by kid; returns the header and raw payload."""

    __slots__ = ("_headers", "_keys", "_max_size", "_typs")

    def __init__(self, keys: KeyLookup, *, typs: frozenset[str], max_size: int = DEFAULT_MAX_SIZE):
        self._keys = keys
        self._typs = frozenset(t.lower() for t in typs)
        self._max_size = max_size
        # Exact header bytes -> parsed header; filled only after a signature verified.
        self._headers: dict[bytes, Header] = {}

    def split(self, token: str | bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """R1–R3, R19: size, shape and alphabet; returns (header, payload, sig, signing input)."""
        if isinstance(token, str):
            if not token.isascii():
                raise MalformedToken("token is not ASCII")
            token = token.encode("ascii")
        elif not isinstance(token, bytes):
            raise MalformedToken("token must be str or bytes")
        if len(token) > self._max_size:
            raise MalformedToken("token exceeds the size limit")
        dots = token.count(b".")  # R1: before splitting
        if dots != 2:
            if dots == 4:
                raise MalformedToken("JWE is not accepted where a JWS is expected")  # R19
            raise MalformedToken("compact JWS has exactly two dots")
        if token.translate(None, _ALPHABET) != b"..":
            raise MalformedToken("token contains characters outside base64url")  # R2, R3
        h, p, s = token.split(b".")
        if not (h and p and s):
            raise MalformedToken("empty JWS segment")
        return h, p, s, token[: len(h) + 1 + len(p)]

    def verify(self, token: str | bytes) -> tuple[Header, VerifyKey, bytes]:
        """Verify; returns (header, key, decoded payload). Raises InvalidToken.

        Fast path for a token whose exact header segment was seen on a verified token:
        it only ever *accepts* what :meth:`verify_strict` accepts. Before the key lookup,
        anything unusual falls back to the strict path, which then decides and words the
        refusal; from the key lookup on, both paths do the same steps in the same order.
        """
        if type(token) is str and token.isascii():
            t = token.encode("ascii")
        elif type(token) is bytes:
            t = token
        else:
            return self.verify_strict(token)
        i = t.find(b".")
        header = self._headers.get(t[:i]) if i > 0 and len(t) <= self._max_size else None
        if header is None:
            return self.verify_strict(token)
        try:
            # Exactly two dots; R3 alphabet, canonical bits, no padding: strict decoding.
            p, s = t[i + 1 :].translate(_TO_STD_STRICT).split(b".")
            sig, payload = _std_decode(s), _std_decode(p)
        except ValueError:  # binascii.Error too; also not exactly two segments left
            return self.verify_strict(token)
        if not (sig and payload):  # an empty segment
            return self.verify_strict(token)
        key = self._keys.get(header.kid)
        if key is None:
            raise KeyNotFound("no configured key has this kid")
        if key.alg.name != header.alg:
            raise InvalidAlgorithm("algorithm does not match the key's algorithm")  # R7
        if not key.check(t[: i + 1 + len(p)], sig):  # R12: over the exact received bytes
            raise InvalidSignature("signature does not verify")
        return header, key, payload

    def verify_strict(self, token: str | bytes) -> tuple[Header, VerifyKey, bytes]:
        """Every check in the order of SECURITY.md: shape, header, key, alg, signature."""
        h, p, s, signing_input = self.split(token)
        header = self._headers.get(h)
        if header is None:
            header = parse_header(h, self._typs)
        key = self._keys.get(header.kid)
        if key is None:
            raise KeyNotFound("no configured key has this kid")
        if key.alg.name != header.alg:
            raise InvalidAlgorithm("algorithm does not match the key's algorithm")  # R7
        if not key.check(signing_input, b64decode(s)):
            raise InvalidSignature("signature does not verify")
        if h not in self._headers:
            if len(self._headers) >= _HEADER_CACHE_MAX:
                self._headers.clear()
            self._headers[h] = header
        return header, key, b64decode(p)


def _std_decode(seg: bytes) -> bytes:
    """Strict decoding of a segment translated by _TO_STD_STRICT; binascii.Error if bad."""
    rem = len(seg) & 3
    if rem:
        # Canonical encoding: the unused low bits of the last character must be zero.
        if rem == 1 or _STD_INDEX[seg[-1]] & (0x0F if rem == 2 else 0x03):
            raise binascii.Error("not canonical base64url")
        seg += _PAD[rem]
    return binascii.a2b_base64(seg, strict_mode=True)


def sign_compact(header_b64: bytes, payload: bytes, alg: Algorithm, key: Any) -> str:
    """Sign ``payload`` under a pre-encoded protected header; returns the compact JWS."""
    signing_input = header_b64 + b"." + b64encode(payload)
    return (signing_input + b"." + b64encode(alg.sign(key, signing_input))).decode("ascii")


def encode_header(header: Mapping[str, str]) -> bytes:
    return b64encode(json.dumps(dict(header), separators=(",", ":")).encode())
