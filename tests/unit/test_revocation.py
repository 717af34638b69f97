"""RevocationView: jti deny-list with expiry, token versions per (iss, sub), epoch, kids."""

from __future__ import annotations

from tokenward.revocation import RevocationView, TokenFacts

from ..conftest import ISS, T0


def _facts(**over: object) -> TokenFacts:
    base: dict[str, object] = {
        "iss": ISS,
        "sub": "alice",
        "jti": "j1",
        "iat": T0,
        "tv": 0,
        "kid": "k1",
    }
    base.update(over)
    return TokenFacts(**base)  # type: ignore[arg-type]


def test_empty_view_revokes_nothing() -> None:
    view = RevocationView()
    assert not view.is_revoked(_facts()) and view.generation == 0


def test_jti_deny_and_purge() -> None:
    view = RevocationView()
    view.deny("j1", T0 + 60)
    assert view.is_revoked(_facts()) and not view.is_revoked(_facts(jti="j2"))
    assert view.purge(T0 + 59) == 0 and len(view) == 1
    assert view.purge(T0 + 60) == 1 and len(view) == 0
    assert not view.is_revoked(_facts())


def test_deny_list_stays_bounded_by_expiry() -> None:
    view = RevocationView()
    for i in range(5000):  # old entries are purged as new ones arrive
        view.deny(f"j{i}", T0 + i * 86400)
    assert len(view) < 5000


def test_token_version_per_issuer_and_subject() -> None:
    view = RevocationView()
    view.set_token_version(ISS, "alice", 2)
    assert view.is_revoked(_facts(tv=1))
    assert not view.is_revoked(_facts(tv=2))
    assert not view.is_revoked(_facts(sub="bob", tv=0))
    assert not view.is_revoked(_facts(iss="https://other", tv=0))  # R18: iss + sub
    view.set_token_version(ISS, "alice", 1)  # versions never go back
    assert view.token_version(ISS, "alice") == 2


def test_global_epoch() -> None:
    view = RevocationView()
    view.set_epoch(T0 + 10)
    assert view.is_revoked(_facts(iat=T0 + 9))
    assert not view.is_revoked(_facts(iat=T0 + 10))
    view.set_epoch(T0)
    assert view.epoch == T0 + 10


def test_removed_kid() -> None:
    view = RevocationView()
    view.remove_kid("k1")
    assert view.is_revoked(_facts()) and not view.is_revoked(_facts(kid="k2"))
