"""The public SDK API is exactly tokenward.__all__, sorted; the py.typed marker ships."""

from __future__ import annotations

from pathlib import Path

import tokenward

EXPECTED = [
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


def test_all_is_locked_and_sorted() -> None:
    assert tokenward.__all__ == EXPECTED

    # isort-style: CONSTANTS, then Classes, then functions and dunders.
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert tokenward.__all__ == sorted(tokenward.__all__, key=kind)


def test_every_name_resolves() -> None:
    for name in tokenward.__all__:
        assert getattr(tokenward, name) is not None


def test_py_typed_marker_ships() -> None:
    assert (Path(tokenward.__file__).parent / "py.typed").exists()
