"""Issuer (claims -> signed RFC 9068 access token) and Verifier (token -> checked claims).

verify: shape -> header -> key by kid -> alg == key's alg -> signature -> payload ->
claims (R13–R16) -> revocation (R22) -> claims. A token already verified is answered from
a bounded cache keyed by its exact string; expiry, key presence and revocation are still
checked on every hit — revocation by comparing the view's generation stamp with the one
the entry was last found unrevoked at (a change to the view forces a full check).
"""

from __future__ import annotations

import secrets
from binascii import b2a_base64 as b2a
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

import orjson

from tokenward.claims import RFC9068_REQUIRED, ClaimRules, check_claims
from tokenward.clock import Clock, system_clock
from tokenward.errors import ExpiredToken, MalformedToken, ReservedClaim, RevokedToken
from tokenward.jose.algorithms import BoundSign, get_algorithm
from tokenward.jose.jwk import import_jwks
from tokenward.jose.jws import DEFAULT_MAX_SIZE, JWSVerifier, KeyLookup, VerifyKey, encode_header
from tokenward.keys import KeyPurpose, KeyRing
from tokenward.revocation import RevocationView

__all__ = ["ACCESS_TYP", "REFRESH_TYP", "RESERVED_CLAIMS", "Issuer", "StaticKeys", "Verifier"]

ACCESS_TYP = "at+jwt"  # RFC 9068 §2.1
REFRESH_TYP = "rt+jwt"  # ours: a refresh JWT is never mistaken for an access token (R17)
ACCESS_TYPS = frozenset({ACCESS_TYP, "application/at+jwt"})
_TO_URL = bytes.maketrans(b"+/", b"-_")
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "tv"}
)


class Issuer:
    """Signs access tokens with the ring's active key (and refresh JWTs with its refresh key)."""

    def __init__(
        self,
        keyring: KeyRing,
        *,
        issuer: str,
        default_ttl: int = 900,
        max_ttl: int = 86400,
        client_id: str = "tokenward",
        clock: Clock = system_clock,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        self._ring, self._iss, self._clock = keyring, issuer, clock
        self._default_ttl, self._max_ttl, self._client_id = default_ttl, max_ttl, client_id
        # (kid, typ) -> (encoded header + ".", bound signer, key material): signing skips
        # lookups, and an HMAC key's keyed state is computed once, not per token.
        self._signers: dict[tuple[str, str], tuple[bytes, BoundSign, Any]] = {}

    @property
    def issuer(self) -> str:
        return self._iss

    def issue(
        self,
        subject: str,
        audience: str | list[str],
        *,
        scope: str | Collection[str] | None = None,
        client_id: str | None = None,
        ttl: int | None = None,
        claims: Mapping[str, Any] | None = None,
        token_version: int | None = None,
    ) -> str:
        """An RFC 9068 access token (``typ: at+jwt``) for ``subject``."""
        payload = self._payload(
            subject, audience, client_id=client_id, ttl=ttl, extra=claims, tv=token_version
        )
        if scope is not None:
            payload["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        return self._sign(payload, ACCESS_TYP, KeyPurpose.ACCESS)

    def issue_refresh(
        self,
        subject: str,
        *,
        client_id: str | None = None,
        ttl: int = 14 * 86400,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A refresh JWT: own ``typ``, audience = this issuer, its own key (R17, R24)."""
        payload = self._payload(
            subject, self._iss, client_id=client_id, ttl=ttl, extra=claims, cap=False
        )
        return self._sign(payload, REFRESH_TYP, KeyPurpose.REFRESH)

    def _payload(
        self,
        subject: str,
        audience: str | list[str],
        *,
        client_id: str | None,
        ttl: int | None,
        extra: Mapping[str, Any] | None,
        tv: int | None = None,
        cap: bool = True,
    ) -> dict[str, Any]:
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject must be a non-empty string")
        if not audience:
            raise ValueError("audience is required")
        ttl = self._default_ttl if ttl is None else ttl
        if ttl <= 0 or (cap and ttl > self._max_ttl):
            raise ValueError(f"ttl must be between 1 and {self._max_ttl} seconds")
        now = int(self._clock())
        payload: dict[str, Any] = {
            "iss": self._iss,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),  # 128 random bits
            "client_id": client_id or self._client_id,
        }
        if tv is not None:
            payload["tv"] = tv
        if extra:
            clash = RESERVED_CLAIMS.intersection(extra)
            if clash:
                raise ReservedClaim(f"claim {sorted(clash)[0]!r} is set by the issuer")
            payload.update(extra)
        return payload

    def _sign(self, payload: dict[str, Any], typ: str, purpose: KeyPurpose) -> str:
        key = self._ring.signing_key(purpose)
        signer = self._signers.get((key.kid, typ))
        if signer is None or signer[2] is not key.material:
            header = encode_header({"alg": key.alg, "kid": key.kid, "typ": typ}) + b"."
            signer = (header, get_algorithm(key.alg).signer(key.material), key.material)
            self._signers[(key.kid, typ)] = signer
        # RFC 7515 §7.1, as jws.sign_compact, inlined: this runs for every token issued.
        signing_input = signer[0] + b2a(orjson.dumps(payload), newline=False).rstrip(b"=")
        signing_input = signing_input.translate(_TO_URL)
        sig = b2a(signer[1](signing_input), newline=False).rstrip(b"=").translate(_TO_URL)
        return (signing_input + b"." + sig).decode("ascii")


class StaticKeys:
    """A fixed {kid: VerifyKey} lookup, e.g. from a JWK Set dict."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, VerifyKey]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> StaticKeys:
        return cls(import_jwks(jwks))

    def get(self, kid: str, /) -> VerifyKey | None:
        return self._keys.get(kid)

    def __repr__(self) -> str:
        return f"StaticKeys({sorted(self._keys)})"


class _Verified:
    """A verified token's cache entry.

    ``checked`` memoises the revocation verdict: the view's generation stamp at which the
    token was last found unrevoked. Every change that can revoke a token restamps the view
    (stamps are unique across views, so a swapped view never matches), and nothing else in
    the verdict depends on time — so while the stamp is unchanged the verdict holds.
    """

    __slots__ = ("checked", "claims", "deadline", "key", "kid")

    def __init__(
        self, claims: dict[str, Any], deadline: float, key: VerifyKey, kid: str, checked: int
    ) -> None:
        self.claims, self.deadline, self.key, self.kid = claims, deadline, key, kid
        self.checked = checked


def _as_keys(source: KeyLookup | Mapping[str, Any] | KeyRing) -> KeyLookup:
    if isinstance(source, Mapping):
        return StaticKeys.from_jwks(source)
    if not callable(getattr(source, "get", None)):
        raise TypeError("keys must be a JWK Set dict, a KeyRing or a key source with get(kid)")
    return source


class Verifier:
    """Verifies access tokens locally. ``verify`` returns the claims or raises InvalidToken."""

    def __init__(
        self,
        jwks: KeyLookup | Mapping[str, Any] | KeyRing,
        *,
        issuer: str,
        audience: str | Collection[str],
        leeway: float = 30,
        typ: str | Collection[str] = ACCESS_TYPS,
        required_claims: Collection[str] = RFC9068_REQUIRED,
        clock: Clock = system_clock,
        revocation: RevocationView | None = None,
        cache_size: int = 4096,
        max_token_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self._keys = _as_keys(jwks)
        typs = frozenset([typ] if isinstance(typ, str) else typ)
        self._jws = JWSVerifier(self._keys, typs=typs, max_size=max_token_size)
        self._rules = ClaimRules.build(issuer, audience, leeway, required_claims)
        self._clock = clock
        self.revocation = revocation if revocation is not None else RevocationView()
        # Insertion-ordered; OrderedDict because evicting the oldest of a plain dict walks
        # over the holes earlier deletions left at its front (O(n) once the cache is full).
        self._cache: OrderedDict[str | bytes, _Verified] = OrderedDict()
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"Verifier(issuer={self._rules.issuer!r}, keys={self._keys!r})"

    @classmethod
    def from_issuer(
        cls, issuer: str, *, audience: str | Collection[str], **options: Any
    ) -> Verifier:
        """Keys and checks discovered from ``issuer``'s RFC 8414 metadata.

        See :func:`tokenward.sdk.verifier.from_issuer` for the options (timeout, client,
        revocation_feed, jwks_options and any Verifier keyword).
        """
        from tokenward.sdk.verifier import from_issuer  # noqa: PLC0415 (sdk.verifier imports us)

        return from_issuer(issuer, audience=audience, verifier_class=cls, **options)

    def verify(self, token: str | bytes) -> dict[str, Any]:
        if not self._cache_size:
            return self._verify_cold(token)
        try:
            hit = self._cache.get(token)
        except TypeError:  # unhashable: certainly not a token; the cold path says why
            hit = None
        if hit is None:
            return self._verify_cold(token)
        if self._clock() >= hit.deadline:
            del self._cache[token]
            raise ExpiredToken("token has expired")
        if self._keys.get(hit.kid) is not hit.key:  # its key left the set
            del self._cache[token]
            return self._verify_cold(token)
        view = self.revocation
        stamp = view.generation  # read before the check: a change during it restamps
        if hit.checked != stamp:  # the view changed since this token was found unrevoked
            if view.revokes(hit.claims, hit.kid):
                raise RevokedToken("token has been revoked")
            hit.checked = stamp
        return dict(hit.claims)

    def _verify_cold(self, token: str | bytes) -> dict[str, Any]:
        header, key, payload = self._jws.verify(token)
        try:
            claims = orjson.loads(payload)  # R12: only after the signature verified
        except orjson.JSONDecodeError:
            raise MalformedToken("payload is not valid JSON") from None
        if type(claims) is not dict:
            raise MalformedToken("payload is not a JSON object")
        exp = check_claims(claims, self._rules, self._clock())
        view = self.revocation
        stamp = view.generation  # 0: nothing was ever revoked
        if stamp and view.revokes(claims, header.kid):
            raise RevokedToken("token has been revoked")
        if not self._cache_size:
            return claims
        if len(self._cache) >= self._cache_size:
            self._cache.popitem(last=False)  # oldest first
        deadline = exp + self._rules.leeway
        self._cache[token] = _Verified(claims, deadline, key, header.kid, stamp)
        return dict(claims)  # the cached dict stays ours
