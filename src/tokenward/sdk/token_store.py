"""Where the client keeps its tokens: the ``TokenStore`` protocol and two stores.

A refresh token is single-use (rotation, SECURITY.md "Refresh tokens"): once the server has
answered a refresh, the previous token is spent and the new one is the only way back into
the session. So a store must have the new set durably before the caller moves on;
``FileTokenStore`` writes a temporary file, fsyncs it and renames it over the old one (an
atomic replace on POSIX), readable by the owner only. Tokens never appear in a repr or log.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["FileTokenStore", "MemoryTokenStore", "TokenSet", "TokenStore", "unverified_exp"]

log = logging.getLogger("tokenward.client")


@dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token, its refresh token and when (by the client's clock) it expires.

    ``expires_at`` is ``None`` when the server did not say; ``issued_at`` (when we received
    it, known when the lifetime came as ``expires_in``) lets the client keep its refresh
    margin below the token's lifetime.
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float | None = None
    issued_at: float | None = None

    @classmethod
    def from_response(cls, body: Any, now: float, previous: TokenSet | None = None) -> TokenSet:
        """Parse an RFC 6749 §5.1 token response received at ``now``; ValueError if malformed.

        ``expires_in`` is relative, so the expiry is on our own clock and clock skew with the
        server does not matter. Without it, the token's ``exp`` is read unverified (we only
        use it to schedule a refresh). §6: a response without a refresh token keeps the old.
        """
        if not isinstance(body, dict):
            raise ValueError("the token response is not a JSON object")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token response has no access_token")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise ValueError("the token response is not for a Bearer token")  # RFC 6750
        refresh = body.get("refresh_token", previous.refresh_token if previous else None)
        if not isinstance(refresh, str) or not refresh:
            raise ValueError("the token response has no refresh_token")
        lifetime = _number(body.get("expires_in"))
        if lifetime is not None and lifetime > 0:
            return cls(access, refresh, now + lifetime, now)
        return cls(access, refresh, unverified_exp(access), None)  # the server's clock, not ours

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TokenSet:
        """The inverse of ``to_dict``; ValueError on anything else."""
        if not isinstance(data, dict):
            raise ValueError("not a token set")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not refresh:
            raise ValueError("not a token set")
        return cls(access, refresh, _number(data.get("expires_at")), _number(data.get("issued_at")))


def _number(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return number if math.isfinite(number) else None


def unverified_exp(token: str) -> float | None:
    """The ``exp`` of a JWT, read WITHOUT verification; only a scheduling hint, never trust."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 16 * 1024:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):  # binascii/JSON/UTF-8 errors are ValueErrors
        return None
    return _number(payload.get("exp")) if isinstance(payload, dict) else None


@runtime_checkable
class TokenStore(Protocol):
    """Persistence for one session's tokens. ``save`` must be durable when it returns."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet, /) -> None: ...


class MemoryTokenStore:
    """Tokens in memory only: the session ends with the process."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens

    def load(self) -> TokenSet | None:
        return self._tokens

    def save(self, tokens: TokenSet, /) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"MemoryTokenStore(loaded={self._tokens is not None})"


class FileTokenStore:
    """Tokens in a JSON file of mode 0600, replaced atomically on every save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def load(self) -> TokenSet | None:
        try:
            mode = self.path.stat().st_mode
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if stat.S_IMODE(mode) & 0o077:
            log.warning("token file %s is readable by others; it should be 0600", self.path)
        try:
            return TokenSet.from_dict(json.loads(raw))
        except ValueError:  # never log the content: it may hold a token
            log.warning("token file %s is not a token set; ignoring it", self.path)
            return None

    def save(self, tokens: TokenSet, /) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps(tokens.to_dict()).encode()
        # mkstemp creates the file with mode 0600, in the same directory so that the
        # rename is atomic; fsync before the rename so a crash leaves old or new, never half.
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not every platform can open a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
