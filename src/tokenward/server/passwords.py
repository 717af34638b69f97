"""Password hashing (argon2id, OWASP parameters) and the password policy.

OWASP Password Storage Cheat Sheet: argon2id with m=19 MiB, t=2, p=1 as the minimum.
Unknown users get a verify against a dummy hash of the same parameters, so the response
time does not reveal whether an account exists.
"""

from __future__ import annotations

import secrets
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokenward.errors import BadRequest

__all__ = ["Passwords"]


def _common_passwords() -> frozenset[str]:
    text = resources.files("tokenward.server").joinpath("common-passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


class Passwords:
    """argon2id hash / verify / rehash-check, dummy verify, and the policy check."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_kib: int = 19456,
        parallelism: int = 1,
        min_length: int = 8,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._min_length = min_length
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self._common = _common_passwords()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def dummy_verify(self, password: str) -> None:
        """Spend the same time as a real verify (unknown user: no enumeration by timing)."""
        self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def check_policy(self, password: str, *, username: str = "") -> None:
        """Raise BadRequest if the password is too short, too long or too common."""
        if len(password) < self._min_length:
            raise BadRequest(f"password must have at least {self._min_length} characters")
        if len(password) > 1024:
            raise BadRequest("password is too long (1024 characters at most)")
        lowered = password.lower()
        if lowered in self._common or (username and lowered == username.lower()):
            raise BadRequest("password is too common; choose another")
