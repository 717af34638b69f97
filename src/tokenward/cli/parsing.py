"""Pure parsers for command-line values; each raises ValueError with a message for the user."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

from tokenward.jose.algorithms import ALGORITHMS
from tokenward.tokens import RESERVED_CLAIMS

__all__ = ["claim_value", "decode_unverified", "parse_alg", "parse_claims", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def parse_duration(text: str, *, allow_zero: bool = False) -> int:
    """``90s``, ``15m``, ``1h``, ``30d`` or plain seconds -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text[:20]!r} is not a duration (use e.g. 90s, 15m, 1h, 30d or seconds)")
    seconds = int(m[1]) * _UNITS[m[2] or "s"]
    if seconds == 0 and not allow_zero:
        raise ValueError("the duration must be longer than zero")
    return seconds


def parse_alg(name: str) -> str:
    """A JWS algorithm from the one table (jose/algorithms.py); exact and case-sensitive."""
    if name not in ALGORITHMS:
        choices = ", ".join(ALGORITHMS)
        raise ValueError(f"unsupported algorithm {name[:20]!r}; choose from {choices}")
    return name


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity stay strings


def claim_value(raw: str) -> Any:
    """JSON if it parses (numbers, true, null, arrays, objects), else the text itself."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return raw


def parse_claims(pairs: Iterable[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs -> claims; the issuer's own claims cannot be overridden."""
    claims: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"{pair[:40]!r} is not NAME=VALUE")
        if name in RESERVED_CLAIMS:
            raise ValueError(f"claim {name!r} is set by the issuer (use its own option if any)")
        if name in claims:
            raise ValueError(f"claim {name!r} is given twice")
        claims[name] = claim_value(raw)
    return claims


def _segment(seg: str, what: str) -> dict[str, Any]:
    if not _B64URL.fullmatch(seg):
        raise ValueError(f"the {what} is not base64url")
    try:
        value = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    except (ValueError, RecursionError):
        raise ValueError(f"the {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


def decode_unverified(token: str) -> dict[str, Any]:
    """Header and payload of a compact JWS, WITHOUT checking anything (for humans only)."""
    parts = token.split(".")
    if len(parts) == 5:
        raise ValueError("this is a JWE: its payload is encrypted")
    if len(parts) != 3:
        raise ValueError("not a JWT: a compact JWS has three dot-separated parts")
    return {"header": _segment(parts[0], "header"), "payload": _segment(parts[1], "payload")}
