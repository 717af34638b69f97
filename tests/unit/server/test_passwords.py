"""Password hashing and policy (SECURITY.md "Accounts"): argon2id with the OWASP defaults."""

from __future__ import annotations

import argon2
import pytest

from tokenward.errors import BadRequest
from tokenward.server.passwords import Passwords

OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords()  # the production defaults


@pytest.fixture(scope="module")
def stored(passwords: Passwords) -> str:
    return passwords.hash(PASSWORD)


def test_hash_is_argon2id_with_owasp_parameters(stored: str) -> None:
    assert stored.startswith(OWASP_PREFIX)


def test_hashes_are_salted(passwords: Passwords, stored: str) -> None:
    again = passwords.hash(PASSWORD)
    assert again != stored
    assert passwords.verify(again, PASSWORD)


def test_hash_never_contains_the_password(stored: str) -> None:
    assert PASSWORD not in stored


def test_verify_accepts_the_right_password(passwords: Passwords, stored: str) -> None:
    assert passwords.verify(stored, PASSWORD) is True


@pytest.mark.parametrize(
    "wrong", ["", "correct horse battery stapl", PASSWORD.upper(), PASSWORD + " "]
)
def test_verify_rejects_wrong_passwords(passwords: Passwords, stored: str, wrong: str) -> None:
    assert passwords.verify(stored, wrong) is False


@pytest.mark.parametrize("garbage", ["", "not a hash", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"])
def test_verify_with_a_corrupt_hash_is_false_not_an_error(
    passwords: Passwords, garbage: str
) -> None:
    assert passwords.verify(garbage, PASSWORD) is False


def test_needs_rehash_false_for_current_parameters(passwords: Passwords, stored: str) -> None:
    assert passwords.needs_rehash(stored) is False


@pytest.mark.parametrize(
    "old", [{"time_cost": 1, "memory_kib": 8192}, {"time_cost": 3}, {"parallelism": 2}]
)
def test_needs_rehash_true_when_parameters_changed(
    passwords: Passwords, old: dict[str, int]
) -> None:
    weaker = Passwords(**old).hash(PASSWORD)
    assert passwords.needs_rehash(weaker) is True


def test_dummy_verify_spends_a_verify_of_the_same_parameters(
    passwords: Passwords, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        seen.append(hash if isinstance(hash, str) else hash.decode())
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    assert passwords.dummy_verify(PASSWORD) is None
    assert len(seen) == 1
    assert seen[0].startswith(OWASP_PREFIX)  # same cost as a real user's verify


def test_dummy_verify_never_matches(passwords: Passwords, monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[bool] = []
    original = Passwords.verify

    def spy(self: Passwords, password_hash: str, password: str) -> bool:
        results.append(original(self, password_hash, password))
        return results[-1]

    monkeypatch.setattr(Passwords, "verify", spy)
    for guess in ("", PASSWORD, "x" * 64):
        passwords.dummy_verify(guess)
    assert results == [False, False, False]


class TestPolicy:
    @pytest.fixture
    def policy(self) -> Passwords:
        return Passwords(time_cost=1, memory_kib=8192, min_length=10)

    def test_accepts_a_good_password(self, policy: Passwords) -> None:
        policy.check_policy(PASSWORD, username="alice")

    @pytest.mark.parametrize("short", ["", "a", "abcdefghi"])
    def test_rejects_short(self, policy: Passwords, short: str) -> None:
        with pytest.raises(BadRequest, match="at least 10 characters"):
            policy.check_policy(short)

    def test_minimum_length_is_inclusive(self, policy: Passwords) -> None:
        policy.check_policy("kq8#vV2!pz")  # exactly 10

    def test_rejects_huge(self, policy: Passwords) -> None:
        with pytest.raises(BadRequest, match="too long"):
            policy.check_policy("x" * 1025)

    @pytest.mark.parametrize("common", ["1234567890", "administrator", "ADMINISTRATOR"])
    def test_rejects_common(self, policy: Passwords, common: str) -> None:
        with pytest.raises(BadRequest, match="too common"):
            policy.check_policy(common)

    @pytest.mark.parametrize("same", ["alice.wonderland", "Alice.Wonderland"])
    def test_rejects_the_username(self, policy: Passwords, same: str) -> None:
        with pytest.raises(BadRequest, match="too common"):
            policy.check_policy(same, username="alice.wonderland")

    def test_default_minimum_is_eight(self) -> None:
        default = Passwords(time_cost=1, memory_kib=8192)
        with pytest.raises(BadRequest):
            default.check_policy("Zq9#vV2")
        default.check_policy("Zq9#vV2!")
