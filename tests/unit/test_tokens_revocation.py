"""The verified-token cache memoises the revocation verdict per view generation stamp.

A cache hit skips the revocation check while the view's stamp is the one the entry was last
found unrevoked at. Each test here caches a token (so the memo is set), then changes the
view, and demands the very next verify refuses the token: a stale memo fails them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenward import FrozenClock, Issuer, KeyRing, RevocationView, RevokedToken, Verifier
from tokenward.revocation import TokenFacts
from tokenward.sdk.feed import RevocationFeed

from ..conftest import AUD, ISS, T0


class CountingView(RevocationView):
    """Counts the verifier's revocation checks, to prove the memo is really used."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def revokes(self, claims: Any, kid: str) -> bool:
        self.checks += 1
        return super().revokes(claims, kid)


@pytest.fixture
def hs_ring(make_ring: Callable[[str], KeyRing]) -> KeyRing:
    return make_ring("HS256")


@pytest.fixture
def issuer(hs_ring: KeyRing, clock: FrozenClock) -> Issuer:
    return Issuer(hs_ring, issuer=ISS, clock=clock)


@pytest.fixture
def view() -> CountingView:
    view = CountingView()
    view.deny("someone-else", T0 + 900)  # a view in use: the memo, not the empty view, decides
    return view


@pytest.fixture
def verifier(hs_ring: KeyRing, clock: FrozenClock, view: CountingView) -> Verifier:
    return Verifier(hs_ring, issuer=ISS, audience=AUD, clock=clock, revocation=view)


def _cached(verifier: Verifier, token: str) -> dict[str, Any]:
    """Verify twice, so the second answer came from the cache with the memo set."""
    claims = verifier.verify(token)
    assert verifier.verify(token) == claims
    return claims


def test_an_unchanged_view_is_not_asked_again(
    issuer: Issuer, verifier: Verifier, view: CountingView
) -> None:
    token = issuer.issue("alice", AUD)
    verifier.verify(token)
    checks = view.checks
    for _ in range(5):
        verifier.verify(token)
    assert view.checks == checks  # the memo answered
    view.deny("another", T0 + 900)
    verifier.verify(token)
    assert view.checks == checks + 1  # a changed view is asked once, then memoised again
    verifier.verify(token)
    assert view.checks == checks + 1


MUTATIONS: dict[str, Callable[[RevocationView, dict[str, Any]], object]] = {
    "deny": lambda v, c: v.deny(c["jti"], c["exp"]),
    "token_version": lambda v, c: v.set_token_version(ISS, c["sub"], 2),
    "epoch": lambda v, c: v.set_epoch(c["iat"] + 1),
    "remove_kid": lambda v, c: v.remove_kid(c["kid"]),
    "refuse_issued_after": lambda v, c: v.refuse_issued_after(c["iat"] - 1),
    "refuse_everything": lambda v, c: v.refuse_issued_after(float("-inf")),
    "apply_deny": lambda v, c: v.apply("deny", {"jti": c["jti"], "exp": c["exp"]}),
    "apply_tv": lambda v, c: v.apply("token_version", {"iss": ISS, "sub": c["sub"], "version": 2}),
    "apply_epoch": lambda v, c: v.apply("epoch", {"epoch": c["iat"] + 1}),
    "apply_remove_kid": lambda v, c: v.apply("remove_kid", {"kid": c["kid"]}),
}


@pytest.mark.parametrize("change", sorted(MUTATIONS))
@pytest.mark.parametrize("cache_size", [4096, 0])
def test_the_next_verify_after_any_revocation_refuses(
    issuer: Issuer, hs_ring: KeyRing, clock: FrozenClock, change: str, cache_size: int
) -> None:
    view = RevocationView()
    view.deny("someone-else", T0 + 900)
    verifier = Verifier(
        hs_ring, issuer=ISS, audience=AUD, clock=clock, revocation=view, cache_size=cache_size
    )
    token = issuer.issue("alice", AUD, token_version=1)
    facts = {**_cached(verifier, token), "kid": hs_ring.signing_key().kid}
    MUTATIONS[change](view, facts)
    for _ in range(3):  # and it stays refused: a refusal is never memoised
        with pytest.raises(RevokedToken):
            verifier.verify(token)


def test_an_empty_view_memo_does_not_survive_its_first_change(
    issuer: Issuer, hs_ring: KeyRing, clock: FrozenClock
) -> None:
    verifier = Verifier(hs_ring, issuer=ISS, audience=AUD, clock=clock)  # stamp 0
    token = issuer.issue("alice", AUD)
    jti = _cached(verifier, token)["jti"]
    verifier.revocation.deny(jti, T0 + 900)
    with pytest.raises(RevokedToken):
        verifier.verify(token)


def test_a_replaced_view_is_consulted(issuer: Issuer, hs_ring: KeyRing, clock: FrozenClock) -> None:
    """Two views with the same number of changes: a per-view counter would collide."""
    old = RevocationView()
    old.deny("someone-else", T0 + 900)
    verifier = Verifier(hs_ring, issuer=ISS, audience=AUD, clock=clock, revocation=old)
    token = issuer.issue("alice", AUD)
    jti = _cached(verifier, token)["jti"]
    new = RevocationView()
    new.deny(jti, T0 + 900)  # one change each
    verifier.revocation = new
    with pytest.raises(RevokedToken):
        verifier.verify(token)
    verifier.revocation = old  # and back: the refusal was not memoised either way
    assert verifier.verify(token)["jti"] == jti


def test_a_fresh_empty_view_after_a_used_one(
    issuer: Issuer, hs_ring: KeyRing, clock: FrozenClock
) -> None:
    verifier = Verifier(hs_ring, issuer=ISS, audience=AUD, clock=clock)
    token = issuer.issue("alice", AUD)
    jti = _cached(verifier, token)["jti"]
    verifier.revocation = RevocationView()  # reset to nothing revoked: still accepted
    assert verifier.verify(token)["jti"] == jti
    verifier.revocation.deny(jti, T0 + 900)
    with pytest.raises(RevokedToken):
        verifier.verify(token)


@pytest.mark.parametrize("on_stale", ["fail_closed", "reject_all"])
def test_a_feed_going_stale_refuses_on_the_next_verify(
    issuer: Issuer, hs_ring: KeyRing, clock: FrozenClock, on_stale: Any
) -> None:
    view = RevocationView()
    verifier = Verifier(hs_ring, issuer=ISS, audience=AUD, clock=clock, revocation=view)
    feed = RevocationFeed(view, http=object(), clock=clock, stale_after=60, on_stale=on_stale)  # type: ignore[arg-type]
    feed.contact()  # heard from at T0
    clock.advance(10)
    token = issuer.issue("alice", AUD)  # issued after the last contact
    assert feed.check() is False
    _cached(verifier, token)
    clock.advance(51)  # 61 s without contact: past stale_after
    assert feed.check() is True
    with pytest.raises(RevokedToken):
        verifier.verify(token)
    feed.contact()  # the feed is back: the cutoff is lifted
    assert feed.check() is False and verifier.verify(token)["sub"] == "alice"


def test_purge_keeps_the_stamp_and_only_unrevokes() -> None:
    view = RevocationView()
    view.deny("j1", T0 + 60)
    stamp = view.generation
    assert view.purge(T0 + 60) == 1 and view.generation == stamp


def test_every_revoking_change_restamps_and_stamps_are_unique_across_views() -> None:
    facts = {"jti": "j", "exp": T0 + 900, "sub": "alice", "iat": T0, "kid": "k"}
    seen = {0}
    for change in MUTATIONS.values():
        view = RevocationView()
        change(view, facts)
        assert view.generation not in seen
        seen.add(view.generation)


# -- the memo against a reference that never memoises -------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("deny"), st.sampled_from(["mine", "other"])),
        st.tuples(st.just("tv"), st.integers(0, 3)),
        st.tuples(st.just("epoch"), st.integers(-2, 2)),
        st.tuples(st.just("kid"), st.sampled_from(["mine", "other"])),
        st.tuples(st.just("cutoff"), st.sampled_from([None, -1, 1, float("-inf")])),
        st.tuples(st.just("purge"), st.just(0)),
        st.tuples(st.just("new_view"), st.just(0)),
        st.tuples(st.just("verify"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=_OPS)
def test_cached_verdicts_always_match_a_fresh_check(ops: list[tuple[str, Any]]) -> None:
    ring = KeyRing()
    kid = ring.generate("HS256", T0).kid
    clock = FrozenClock(T0)
    token = Issuer(ring, issuer=ISS, clock=clock).issue("alice", AUD, token_version=1)
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
    jti = verifier.verify(token)["jti"]
    for op, arg in ops:  # a verify after every step; "verify" alone changes nothing
        view = verifier.revocation
        if op == "deny":
            view.deny(jti if arg == "mine" else "other", T0 + 900)
        elif op == "tv":
            view.set_token_version(ISS, "alice", arg)
        elif op == "epoch":
            view.set_epoch(T0 + arg)
        elif op == "kid":
            view.remove_kid(kid if arg == "mine" else "other")
        elif op == "cutoff":
            view.refuse_issued_after(None if arg is None else T0 + arg)
        elif op == "purge":
            view.purge(T0 + 1000)  # drops every denial: only ever un-revokes
        elif op == "new_view":
            verifier.revocation = RevocationView()
        expected = verifier.revocation.is_revoked(TokenFacts(ISS, "alice", jti, T0, 1, kid))
        if expected:
            with pytest.raises(RevokedToken):
                verifier.verify(token)
        else:
            assert verifier.verify(token)["jti"] == jti
