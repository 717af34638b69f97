"""What has been revoked, as seen by one verifier (SECURITY.md R22).

Revocation keys on ``jti``, the per-subject token version (``tv``), the global epoch and
removed key ids — never on the token string, because ECDSA signatures are malleable
(a second valid encoding of the same token must be just as revoked).

In-memory; the server feeds it from its store, and later from a push feed.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RevocationView", "TokenFacts"]

_PURGE_EVERY = 1024


class TokenFacts(NamedTuple):
    """The few claims revocation looks at, extracted once per verified token.

    A NamedTuple, not a frozen dataclass: built on every cold verify, and tuple
    construction is several times cheaper.
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
        self._adds = 0
        self.generation = 0  # bumped on every change; lets callers skip work when unchanged

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

    def purge(self, now: float) -> int:
        """Drop deny-list entries whose tokens have expired by ``now``; returns how many."""
        dead = [jti for jti, exp in self._denied.items() if exp <= now]
        for jti in dead:
            del self._denied[jti]
        return len(dead)

    def __len__(self) -> int:
        return len(self._denied)

    def _changed(self) -> None:
        self.generation += 1

    # -- asking it ----------------------------------------------------------------------
    def is_revoked(self, facts: TokenFacts) -> bool:
        if self.generation == 0:
            return False
        return (
            facts.jti in self._denied
            or facts.iat < self._epoch
            or facts.kid in self._removed_kids
            or facts.tv < self._versions.get((facts.iss, facts.sub), 0)
        )
