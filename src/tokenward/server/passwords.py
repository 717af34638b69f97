"""Password hashing (argon2id, OWASP parameters) and the password policy.

OWASP Password Storage Cheat Sheet: argon2id with m=19 MiB, t=2, p=1 as the minimum.
Unknown users get a verify against a dummy hash of the same parameters, so the response
time does not reveal whether an account exists.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokenward.errors import BadRequest

__all__ = ["Passwords"]

_T = TypeVar("_T")


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
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="tokenward-argon2"
        )

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

    # -- async: argon2 releases the GIL; run it off the event loop, at most one hash per
    # core at a time, so a login burst cannot queue more hashes than the CPU can run while
    # the loop starves (the default executor allows cores + 4 threads).
    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def ahash(self, password: str) -> str:
        return await self._run(self.hash, password)

    async def averify(self, password_hash: str, password: str) -> bool:
        return await self._run(self.verify, password_hash, password)

    async def adummy_verify(self, password: str) -> None:
        await self._run(self.dummy_verify, password)

    def check_policy(self, password: str, *, username: str = "") -> None:
        """Raise BadRequest if the password is too short, too long or too common."""
        if len(password) < self._min_length:
            raise BadRequest(f"password must have at least {self._min_length} characters")
        if len(password) > 1024:
            raise BadRequest("password is too long (1024 characters at most)")
        lowered = password.lower()
        if lowered in self._common or (username and lowered == username.lower()):
            raise BadRequest("password is too common; choose another")
