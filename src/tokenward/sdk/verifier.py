"""``Verifier.from_issuer``: a resource server configured from the issuer URL alone.

RFC 8414 §3: the authorization server metadata lives at ``/.well-known/oauth-authorization-
server``, inserted between the host and the issuer's path (§3.1, so each tenant of a
multi-tenant issuer has its own document). §3.3: the ``issuer`` in the document must be
identical to the URL we asked about, or the document must not be used — otherwise one
issuer's metadata could point us at another's keys (the mix-up attack). The ``jwks_uri``
it names is then read with :class:`RemoteJWKS` (cached, politely refetched, R23).

The fetches are plain ``httpx`` with a timeout and no redirects; https only, except on
loopback (the same rule as RemoteJWKS). Everything is fetched once, at start-up, so a
wrong URL fails there and not on the first request.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from tokenward.clock import Clock, system_clock
from tokenward.errors import ConfigError, JWKSError
from tokenward.revocation import RevocationView
from tokenward.sdk.jwks import RemoteJWKS
from tokenward.tokens import Verifier

__all__ = ["METADATA_PATH", "discover", "from_issuer", "metadata_url"]

METADATA_PATH = "/.well-known/oauth-authorization-server"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_BYTES = 256 * 1024


def metadata_url(issuer: str) -> str:
    """The RFC 8414 §3.1 metadata URL for ``issuer``."""
    parts = urlsplit(issuer)
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise ConfigError("issuer must be an https URL (plain http only on loopback)")
    if parts.query or parts.fragment:  # RFC 8414 §2: no query or fragment components
        raise ConfigError("issuer must not have a query or fragment")
    path = parts.path.rstrip("/")  # §3.1: a terminating "/" is removed before inserting
    return urlunsplit((parts.scheme, parts.netloc, METADATA_PATH + path, "", ""))


def _get_json(http: httpx.Client, url: str, what: str) -> dict[str, Any]:
    try:
        resp = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise JWKSError(f"cannot fetch the {what}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise JWKSError(f"the {what} answered HTTP {resp.status_code}")
    if len(resp.content) > _MAX_BYTES:
        raise JWKSError(f"the {what} is too large")
    try:
        doc: Any = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        raise JWKSError(f"the {what} is not JSON") from None
    if not isinstance(doc, dict):
        raise JWKSError(f"the {what} is not a JSON object")
    return doc


def discover(
    issuer: str, *, client: httpx.Client | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """The issuer's RFC 8414 metadata, checked: same ``issuer``, a ``jwks_uri`` string."""
    url = metadata_url(issuer)
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        doc = _get_json(http, url, "authorization server metadata")
    finally:
        if client is None:
            http.close()
    if doc.get("issuer") != issuer:  # §3.3: exact, case-sensitive (and R14)
        raise JWKSError("the metadata's issuer is not the configured issuer (RFC 8414 §3.3)")
    if not isinstance(doc.get("jwks_uri"), str):
        raise JWKSError("the metadata has no jwks_uri")
    return doc


def from_issuer(
    issuer: str,
    *,
    audience: str | Collection[str],
    client: httpx.Client | None = None,
    timeout: float = 5.0,
    clock: Clock = system_clock,
    revocation_feed: RevocationView | None = None,
    jwks_options: Mapping[str, Any] | None = None,
    verifier_class: Callable[..., Verifier] = Verifier,
    **options: Any,
) -> Verifier:
    """A Verifier for tokens of ``issuer`` meant for ``audience``, keys from its JWKS.

    ``revocation_feed`` is the RevocationView the verifier consults (fed by the scale-out
    push feed once that exists); ``jwks_options`` go to RemoteJWKS (cooldown, max_age_cap,
    ...), the remaining ``options`` to Verifier (leeway, cache_size, ...).
    """
    doc = discover(issuer, client=client, timeout=timeout)
    jwks = RemoteJWKS(
        doc["jwks_uri"], timeout=timeout, clock=clock, client=client, **dict(jwks_options or {})
    )
    try:
        jwks.refresh()  # fail at start-up, not on the first request
    except JWKSError:
        jwks.close()
        raise
    return verifier_class(
        jwks, issuer=issuer, audience=audience, clock=clock, revocation=revocation_feed, **options
    )
