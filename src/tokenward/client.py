"""The HTTP client side, for ``from tokenward.client import TokenwardAuth``.

Re-exports ``tokenward.sdk.client`` and ``tokenward.sdk.token_store``; see docs/client.md.
"""

from __future__ import annotations

from tokenward.errors import SessionRevoked
from tokenward.sdk.client import TokenwardAuth
from tokenward.sdk.token_store import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore

__all__ = [
    "FileTokenStore",
    "MemoryTokenStore",
    "SessionRevoked",
    "TokenSet",
    "TokenStore",
    "TokenwardAuth",
]
