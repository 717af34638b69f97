"""RevocationView: jti deny-list with expiry, token versions per (iss, sub), epoch, kids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_refuse_issued_after_a_cutoff_then_lift_it() -> None:
    """A stale feed, failing closed: tokens issued after the last contact are refused."""
    view = RevocationView()
    view.refuse_issued_after(T0)
    assert view.generation > 0 and view.refusing_issued_after == T0
    assert not view.is_revoked(_facts(iat=T0))  # known at the last contact
    assert view.is_revoked(_facts(iat=T0 + 1))
    view.refuse_issued_after(None)
    assert view.refusing_issued_after is None
    assert not view.is_revoked(_facts(iat=T0 + 1))


def test_refuse_everything() -> None:
    view = RevocationView()
    view.refuse_issued_after(float("-inf"))
    assert view.is_revoked(_facts(iat=0)) and view.is_revoked(_facts(iat=T0))


def test_apply_each_event_kind() -> None:
    view = RevocationView()
    assert view.apply("deny", {"jti": "j1", "exp": T0 + 60})
    assert view.apply("token_version", {"iss": ISS, "sub": "bob", "version": 2})
    assert view.apply("epoch", {"epoch": T0 - 5})
    assert view.apply("remove_kid", {"kid": "k9"})
    assert view.apply("keys_changed", {"version": 3})  # nothing for a view to do
    assert view.is_revoked(_facts(jti="j1"))
    assert view.is_revoked(_facts(jti="j2", sub="bob", tv=1))
    assert view.is_revoked(_facts(jti="j2", iat=T0 - 6))
    assert view.is_revoked(_facts(jti="j2", kid="k9"))
    assert not view.is_revoked(_facts(jti="j2"))
    assert view.epoch == T0 - 5 and view.token_version(ISS, "bob") == 2


def test_applying_twice_or_out_of_order_gives_the_same_view() -> None:
    events = [
        ("token_version", {"iss": ISS, "sub": "alice", "version": 3}),
        ("deny", {"jti": "j1", "exp": T0 + 60}),
        ("token_version", {"iss": ISS, "sub": "alice", "version": 2}),
        ("epoch", {"epoch": T0}),
    ]
    forward, backward = RevocationView(), RevocationView()
    for kind, data in events + events:
        forward.apply(kind, data)
    for kind, data in reversed(events):
        backward.apply(kind, data)
    for view in (forward, backward):
        assert view.token_version(ISS, "alice") == 3 and view.epoch == T0 and len(view) == 1


def test_malformed_events_are_ignored_not_raised() -> None:
    view = RevocationView()
    bad: list[tuple[str, object]] = [
        ("nuke", {}),
        ("deny", {"jti": "j1"}),  # no exp
        ("deny", {"jti": "", "exp": T0}),
        ("deny", {"jti": "j1", "exp": "tomorrow"}),
        ("deny", {"jti": "j1", "exp": float("nan")}),
        ("deny", {"jti": 7, "exp": T0}),
        ("token_version", {"iss": ISS, "sub": "alice", "version": 2.5}),
        ("token_version", {"iss": ISS, "sub": "alice", "version": True}),
        ("epoch", {"epoch": None}),
        ("remove_kid", ["k1"]),
        ("deny", "j1"),
    ]
    for kind, data in bad:
        assert view.apply(kind, data) is False  # type: ignore[arg-type]
    assert view.generation == 0


_FACTS = st.builds(
    TokenFacts,
    iss=st.sampled_from([ISS, "https://other"]),
    sub=st.sampled_from(["alice", "bob"]),
    jti=st.sampled_from(["j1", "j2"]),
    iat=st.sampled_from([T0 - 1, T0, T0 + 1, -1]),
    tv=st.integers(0, 3),
    kid=st.sampled_from(["k1", "k2"]),
)
_CHANGES = st.lists(
    st.one_of(
        st.builds(lambda j: ("deny", {"jti": j, "exp": T0 + 60}), st.sampled_from(["j1", "j3"])),
        st.builds(
            lambda s, n: ("token_version", {"iss": ISS, "sub": s, "version": n}),
            st.sampled_from(["alice", "bob"]),
            st.integers(0, 3),
        ),
        st.builds(lambda e: ("epoch", {"epoch": T0 + e}), st.integers(-1, 1)),
        st.builds(lambda k: ("remove_kid", {"kid": k}), st.sampled_from(["k2", "k3"])),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(changes=_CHANGES, cutoff=st.sampled_from([None, T0, float("-inf")]), facts=_FACTS)
def test_revokes_on_claims_agrees_with_is_revoked_on_facts(
    changes: list[tuple[str, dict[str, object]]], cutoff: float | None, facts: TokenFacts
) -> None:
    """The verifier's claims-dict entry point and the TokenFacts one: one verdict."""
    view = RevocationView()
    for kind, data in changes:
        view.apply(kind, data)
    view.refuse_issued_after(cutoff)
    claims = {"iss": facts.iss, "sub": facts.sub, "jti": facts.jti, "iat": facts.iat}
    if facts.tv:
        claims["tv"] = facts.tv  # absent tv reads as 0, like TokenFacts' default
    assert view.revokes(claims, facts.kid) == view.is_revoked(facts)


def test_deny_list_alone_then_other_state_then_lifted() -> None:
    """The deny-list-only fast path is left as soon as anything else is in use."""
    view = RevocationView()
    view.deny("j9", T0 + 60)
    assert not view.is_revoked(_facts(iat=T0 + 5))
    view.refuse_issued_after(T0)
    assert view.is_revoked(_facts(iat=T0 + 5))
    view.refuse_issued_after(None)
    assert not view.is_revoked(_facts(iat=T0 + 5))
    view.set_token_version(ISS, "alice", 1)
    assert view.is_revoked(_facts(iat=T0 + 5, tv=0))
