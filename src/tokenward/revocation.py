"""What has been revoked, as seen by one verifier (SECURITY.md R22).

Revocation keys on ``jti``, the per-subject token version (``tv``), the global epoch and
removed key ids — never on the token string, because ECDSA signatures are malleable
(a second valid encoding of the same token must be just as revoked).

In-memory; the server feeds it from its store and the revocation events of the other
nodes, a resource server from the push feed (:mod:`tokenward.sdk.feed`) through
:meth:`RevocationView.apply`.

When that feed has been out of reach for too long, the view can be told to refuse tokens
issued after a cutoff (:meth:`RevocationView.refuse_issued_after`): fail closed without
refusing everything at once.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = ["EVENT_KINDS", "RevocationView", "TokenFacts"]

log = logging.getLogger("tokenward.revocation")

# The kinds of revocation event the feed carries (the server's store defines the same set);
# ``keys_changed`` says nothing to a view: a key source reloads on it.
EVENT_KINDS = frozenset({"deny", "token_version", "epoch", "remove_kid", "keys_changed"})

_PURGE_EVERY = 1024

# Generation stamps are drawn from one process-wide counter, so a stamp names one state of
# one view: a verifier that memoised "not revoked at stamp g" (tokens.py) can compare
# stamps alone, and a view swapped for another can never present the same stamp. 0 is only
# ever the stamp of a view nothing was applied to, which revokes nothing.
_STAMPS = itertools.count(1)


class TokenFacts(NamedTuple):
    """The few claims revocation looks at, for :meth:`RevocationView.is_revoked`.

    The verifier itself asks :meth:`RevocationView.revokes` with the claims dict instead:
    building this tuple costs more than the deny-list lookup that usually settles it.
    """

    iss: str
    sub: str
    jti: str
    iat: float
    tv: int
    kid: str


class RevocationView:
    """jti deny-list with expiry, per-subject token versions, a global epoch, removed kids."""

    def __init__(self) -> None:
        self._denied: dict[str, float] = {}  # jti -> when the denied token expires anyway
        self._versions: dict[tuple[str, str], int] = {}  # (iss, sub) -> minimum valid tv (R18)
        self._epoch = 0.0
        self._removed_kids: set[str] = set()
        self._issued_after = math.inf  # tokens with iat above it are refused (stale feed)
        self._adds = 0
        # Only the deny-list is in use (no epoch, tv, removed kid or cutoff): is_revoked is
        # then a single dict lookup — the usual state of a view (logouts are jti denials).
        self._deny_only = True
        # Restamped after every change that can revoke a token, never before the data is in
        # place: a reader that sees stamp g also sees every change made up to g. Changes
        # that can only un-revoke (purge, a deny entry expiring) keep the stamp.
        self.generation = 0

    # -- feeding it ---------------------------------------------------------------------
    def deny(self, jti: str, expires_at: float) -> None:
        """Deny one token until it would have expired anyway (memory stays bounded)."""
        self._denied[jti] = max(expires_at, self._denied.get(jti, 0.0))
        self._changed()
        self._adds += 1
        if self._adds % _PURGE_EVERY == 0:
            self.purge(expires_at - 86400 * 366)

    def set_token_version(self, iss: str, sub: str, version: int) -> None:
        """Every token of (iss, sub) with ``tv`` below ``version`` is revoked."""
        key = (iss, sub)
        if version > self._versions.get(key, 0):
            self._versions[key] = version
            self._changed()

    def token_version(self, iss: str, sub: str) -> int:
        return self._versions.get((iss, sub), 0)

    def set_epoch(self, epoch: float) -> None:
        """Every token issued (``iat``) before ``epoch`` is revoked."""
        if epoch > self._epoch:
            self._epoch = epoch
            self._changed()

    @property
    def epoch(self) -> float:
        return self._epoch

    def remove_kid(self, kid: str) -> None:
        """Every token signed by ``kid`` is revoked (key compromise)."""
        self._removed_kids.add(kid)
        self._changed()

    def refuse_issued_after(self, cutoff: float | None) -> None:
        """Refuse every token issued (``iat``) after ``cutoff``; None lifts it.

        For a verifier whose revocation feed went quiet: it knows every revocation up to
        the moment it last heard from the feed, so tokens issued before then may still be
        used until they expire, and newer ones — whose revocation it could have missed —
        are refused. ``-inf`` refuses everything.
        """
        value = math.inf if cutoff is None else float(cutoff)
        if value != self._issued_after:
            self._issued_after = value
            self._changed()

    @property
    def refusing_issued_after(self) -> float | None:
        return None if self._issued_after == math.inf else self._issued_after

    def apply(self, kind: str, data: Mapping[str, Any]) -> bool:
        """Apply one revocation event; False (and a log line) for one it cannot read.

        Every kind is idempotent and order-free (maxima and set unions), so an event seen
        twice, or late, leaves the same view.
        """
        handler = _APPLY.get(kind)
        try:
            if handler is None:
                raise ValueError(f"unknown kind {kind[:32]!r}")
            handler(self, data)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed %s revocation event: %s", kind[:32], exc)
            return False
        return True

    def purge(self, now: float) -> int:
        """Drop deny-list entries whose tokens have expired by ``now``; returns how many."""
        dead = [jti for jti, exp in self._denied.items() if exp <= now]
        for jti in dead:
            del self._denied[jti]
        return len(dead)

    def __len__(self) -> int:
        return len(self._denied)

    def _changed(self) -> None:
        self._deny_only = not (
            self._epoch or self._removed_kids or self._versions or self._issued_after != math.inf
        )
        self.generation = next(_STAMPS)  # last: see __init__

    # -- asking it ----------------------------------------------------------------------
    def is_revoked(self, facts: TokenFacts) -> bool:
        if facts[2] in self._denied:  # jti; by index, cheaper than the named field
            return True
        if self._deny_only:
            return False
        iss, sub, _, iat, tv, kid = facts
        return self._revoked_otherwise(iss, sub, iat, tv, kid)

    def revokes(self, claims: Mapping[str, Any], kid: str) -> bool:
        """:meth:`is_revoked` for a payload ``check_claims`` accepted, signed by ``kid``.

        The verifier's path: no TokenFacts is built (constructing one costs more than the
        deny-list lookup that usually settles it). Absent claims read as in TokenFacts.
        """
        g = claims.get
        if g("jti", "") in self._denied:
            return True
        if self._deny_only:
            return False
        return self._revoked_otherwise(g("iss", ""), g("sub", ""), g("iat", 0), g("tv", 0), kid)

    def _revoked_otherwise(self, iss: str, sub: str, iat: float, tv: int, kid: str) -> bool:
        return (
            iat < self._epoch
            or kid in self._removed_kids
            or tv < self._versions.get((iss, sub), 0)
            or iat > self._issued_after
        )


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string")
    return value


def _number(data: Mapping[str, Any], name: str) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number")
    return float(value)


def _version(data: Mapping[str, Any]) -> int:
    value = data["version"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("version must be an integer")
    return value


_APPLY: Mapping[str, Callable[[RevocationView, Mapping[str, Any]], None]] = {
    "deny": lambda v, d: v.deny(_text(d, "jti"), _number(d, "exp")),
    "token_version": lambda v, d: v.set_token_version(
        _text(d, "iss"), _text(d, "sub"), _version(d)
    ),
    "epoch": lambda v, d: v.set_epoch(_number(d, "epoch")),
    "remove_kid": lambda v, d: v.remove_kid(_text(d, "kid")),
    "keys_changed": lambda v, d: None,
}
