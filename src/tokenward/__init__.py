"""tokenward: strict local JWT verification, key rotation and an async auth server.

The public SDK API is exactly ``__all__`` (locked by tests/unit/test_public_api.py).
"""

from tokenward.claims import RFC9068_REQUIRED
from tokenward.clock import Clock, FrozenClock
from tokenward.errors import (
    ExpiredToken,
    InvalidAlgorithm,
    InvalidClaims,
    InvalidKey,
    InvalidSignature,
    InvalidToken,
    JWKSError,
    KeyNotFound,
    MalformedToken,
    RevokedToken,
    SessionRevoked,
    TokenNotYetValid,
    TokenwardError,
    WrongTokenType,
)
from tokenward.keys import KeyPurpose, KeyRing, KeyState, ManagedKey
from tokenward.revocation import RevocationView
from tokenward.rotation import RotationPolicy, rotate
from tokenward.sdk.client import TokenwardAuth
from tokenward.sdk.feed import RevocationFeed
from tokenward.sdk.jwks import RemoteJWKS
from tokenward.sdk.principal import Principal
from tokenward.sdk.token_store import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore
from tokenward.tokens import ACCESS_TYP, REFRESH_TYP, Issuer, StaticKeys, Verifier

__version__ = "0.1.0"

__all__ = [
    "ACCESS_TYP",
    "REFRESH_TYP",
    "RFC9068_REQUIRED",
    "Clock",
    "ExpiredToken",
    "FileTokenStore",
    "FrozenClock",
    "InvalidAlgorithm",
    "InvalidClaims",
    "InvalidKey",
    "InvalidSignature",
    "InvalidToken",
    "Issuer",
    "JWKSError",
    "KeyNotFound",
    "KeyPurpose",
    "KeyRing",
    "KeyState",
    "MalformedToken",
    "ManagedKey",
    "MemoryTokenStore",
    "Principal",
    "RemoteJWKS",
    "RevocationFeed",
    "RevocationView",
    "RevokedToken",
    "RotationPolicy",
    "SessionRevoked",
    "StaticKeys",
    "TokenNotYetValid",
    "TokenSet",
    "TokenStore",
    "TokenwardAuth",
    "TokenwardError",
    "Verifier",
    "WrongTokenType",
    "__version__",
    "rotate",
]
