"""RemoteJWKS: a JWK Set fetched from one configured URL, cached, refetched politely (R23).

- Only the configured URL is ever fetched: no redirects, no ``jku``/``x5u`` from tokens.
- The cache lifetime follows the response's ``Cache-Control: max-age`` (RFC 9111 §5.2.2.1),
  clamped to [cooldown, max_age_cap].
- An unknown kid triggers at most one refetch per ``cooldown`` (a token stream of random
  kids cannot turn the verifier into a load generator against the issuer).
- A failed refetch keeps the last good set; the failure is logged, never raised into verify.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tokenward.clock import Clock, system_clock
from tokenward.errors import JWKSError
from tokenward.jose.jwk import import_jwks
from tokenward.jose.jws import VerifyKey

__all__ = ["RemoteJWKS"]

log = logging.getLogger("tokenward.jwks")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d{1,10})\s*(?:,|$)", re.IGNORECASE)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def cache_lifetime(cache_control: str | None, default: float, lo: float, hi: float) -> float:
    """Seconds to keep a response, from its Cache-Control header, clamped to [lo, hi]."""
    if cache_control:
        if re.search(r"no-store|no-cache", cache_control, re.IGNORECASE):
            return lo
        m = _MAX_AGE.search(cache_control)
        if m:
            return min(max(float(m.group(1)), lo), hi)
    return min(max(default, lo), hi)


class RemoteJWKS:
    """A key source (``get(kid)``) backed by an HTTPS JWK Set URL."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        cooldown: float = 30.0,
        default_max_age: float = 300.0,
        max_age_cap: float = 86400.0,
        max_bytes: int = 512 * 1024,
        clock: Clock = system_clock,
        client: httpx.Client | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise JWKSError("JWKS URL must be https (plain http only on loopback)")
        self.url = url
        self._cooldown, self._default, self._cap = cooldown, default_max_age, max_age_cap
        self._max_bytes = max_bytes
        self._clock = clock
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._keys: dict[str, VerifyKey] = {}
        self._expires = float("-inf")
        self._last_attempt = float("-inf")
        self.fetches = 0

    def __repr__(self) -> str:
        return f"RemoteJWKS({self.url!r}, kids={sorted(self._keys)})"

    def get(self, kid: str, /) -> VerifyKey | None:
        now = self._clock()
        if now >= self._expires:
            self._refresh(now)
        key = self._keys.get(kid)
        if key is None and now >= self._last_attempt + self._cooldown:
            self._refresh(now)  # a kid we have not seen: maybe the issuer rotated (R6)
            key = self._keys.get(kid)
        return key

    def close(self) -> None:
        """Close the HTTP client if we created it."""
        if self._own_client:
            self._client.close()

    def __enter__(self) -> RemoteJWKS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Fetch now, raising JWKSError on failure (for start-up checks)."""
        with self._lock:
            self._fetch(self._clock())

    def _refresh(self, now: float) -> None:
        with self._lock:
            if now < self._last_attempt + self._cooldown and now < self._expires:
                return  # another thread just did it
            try:
                self._fetch(now)
            except JWKSError as exc:
                log.warning("JWKS refresh from %s failed: %s", self.url, exc.detail)
                self._expires = now + self._cooldown  # keep the last good set meanwhile

    def _fetch(self, now: float) -> None:
        self._last_attempt = now
        self.fetches += 1
        try:
            resp = self._client.get(self.url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JWKSError(f"cannot fetch JWKS: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise JWKSError(f"JWKS answered HTTP {resp.status_code}")
        if len(resp.content) > self._max_bytes:
            raise JWKSError("JWKS response is too large")
        try:
            doc: Any = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise JWKSError("JWKS response is not JSON") from None
        if not isinstance(doc, dict):
            raise JWKSError("JWKS response is not a JSON object")
        self._keys = import_jwks(doc)
        ttl = cache_lifetime(
            resp.headers.get("cache-control"), self._default, self._cooldown, self._cap
        )
        self._expires = now + ttl
