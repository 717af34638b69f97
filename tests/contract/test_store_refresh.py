"""The Store contract, part 2: refresh families, rotation with reuse detection, revocation.

SECURITY.md "Refresh tokens": a refresh is one atomic compare-and-set active -> used plus
the insert of the child; of concurrent refreshes with the same token exactly one wins.
"""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from tests.contract.records import DAY, T0, child, event, family, first_token, h, user
from tokenward.errors import Conflict
from tokenward.store.base import (
    RefreshSession,
    RefreshState,
    RefreshToken,
    RotateOutcome,
    RotateResult,
    Store,
)

pytestmark = pytest.mark.anyio

ACTIVE, USED, REVOKED = RefreshState.ACTIVE, RefreshState.USED, RefreshState.REVOKED


async def started(
    store: Store, fid: str = "f1", user_id: str = "u1", at: float = T0
) -> RefreshToken:
    fam = family(fid, user_id, at)
    first = first_token(fam, f"{fid}-r0")
    await store.start_family(fam, first)
    return first


async def rotate(store: Store, token: RefreshToken, name: str, at: float) -> RefreshToken:
    new = child(token, name, at)
    result = await store.rotate_refresh(token.token_hash, new, at, at + DAY)
    assert result == RotateResult(RotateOutcome.ROTATED, token)
    return new


async def state(store: Store, token: RefreshToken) -> RefreshState | None:
    found = await store.get_refresh(token.token_hash)
    return None if found is None else found.state


# families --------------------------------------------------------------------------------


async def test_refresh_session_reads_token_family_and_user_together(store: Store) -> None:
    await store.add_user(user(1, roles=("admin", "ops")))
    first = await started(store)
    session = await store.get_refresh_session(first.token_hash)
    assert session == RefreshSession(first, family("f1"), user(1, roles=("admin", "ops")))
    assert await store.get_refresh_session(h("nope")) is None
    # a token whose user is gone (or never existed here) still comes back, user None
    orphan = await started(store, "f2", user_id="u-gone")
    assert await store.get_refresh_session(orphan.token_hash) == RefreshSession(
        orphan, family("f2", "u-gone"), None
    )
    # the session reflects the latest state of each part
    second = await rotate(store, first, "r1", T0 + 5)
    await store.bump_token_version("u1")
    again = await store.get_refresh_session(first.token_hash)
    assert again is not None and again.token.state is USED and again.token.used_at == T0 + 5
    assert again.family is not None and again.family.last_used_at == T0 + 5
    assert again.user is not None and again.user.token_version == 1
    newest = await store.get_refresh_session(second.token_hash)
    assert newest is not None and newest.token == second


async def test_rotation_stores_its_audit_event_only_when_it_wins(store: Store) -> None:
    first = await started(store)
    won = await store.rotate_refresh(
        first.token_hash, child(first, "r1", T0 + 1), T0 + 1, T0 + DAY, audit=event("a1", T0 + 1)
    )
    assert won.outcome is RotateOutcome.ROTATED
    lost = await store.rotate_refresh(
        first.token_hash, child(first, "r2", T0 + 2), T0 + 2, T0 + DAY, audit=event("a2", T0 + 2)
    )
    assert lost.outcome is RotateOutcome.REUSED
    unknown = await store.rotate_refresh(
        h("nope"), child(first, "r3", T0 + 3), T0 + 3, T0 + DAY, audit=event("a3", T0 + 3)
    )
    assert unknown.outcome is RotateOutcome.UNKNOWN
    assert [e.id for e in await store.list_audit()] == ["a1"]


async def test_a_failing_audit_insert_undoes_the_rotation(store: Store) -> None:
    """One transaction: an audit row that cannot be stored leaves the token unrotated."""
    await store.add_audit(event("taken", T0))
    first = await started(store)
    with pytest.raises(Conflict):
        await store.rotate_refresh(
            first.token_hash, child(first, "r1", T0 + 1), T0 + 1, T0 + DAY, audit=event("taken", T0)
        )
    assert await state(store, first) is ACTIVE
    assert await store.get_refresh(h("r1")) is None


async def test_start_family_round_trip(store: Store) -> None:
    fam = family("f1")
    first = first_token(fam)
    await store.start_family(fam, first)
    assert await store.get_family("f1") == fam
    assert await store.get_refresh(first.token_hash) == first
    assert await store.get_family("nope") is None
    assert await store.get_refresh(h("nope")) is None


async def test_start_family_stores_its_audit_event_in_one_transaction(store: Store) -> None:
    fam = family("f1")
    await store.start_family(fam, first_token(fam), audit=event("signed-in", T0))
    assert [e.id for e in await store.list_audit()] == ["signed-in"]
    # an audit row that cannot be stored undoes the family and its first token
    other = family("f2")
    with pytest.raises(Conflict):
        await store.start_family(other, first_token(other, "f2-r0"), audit=event("signed-in", T0))
    assert await store.get_family("f2") is None
    assert await store.get_refresh(h("f2-r0")) is None
    assert [e.id for e in await store.list_audit()] == ["signed-in"]


async def test_start_family_twice_conflicts(store: Store) -> None:
    fam = family("f1")
    await store.start_family(fam, first_token(fam))
    with pytest.raises(Conflict):
        await store.start_family(fam, first_token(fam, "other"))
    assert await store.get_refresh(h("other")) is None


async def test_start_family_needs_its_own_first_token(store: Store) -> None:
    fam = family("f1")
    with pytest.raises(ValueError, match="first token"):
        await store.start_family(fam, first_token(family("f2")))
    with pytest.raises(ValueError, match="first token"):
        await store.start_family(fam, replace(first_token(fam), parent_hash=h("x")))
    assert await store.get_family("f1") is None


async def test_list_families_newest_first_and_active_only(store: Store) -> None:
    await started(store, "f1", at=T0)
    await started(store, "f2", at=T0 + 2)
    await started(store, "f3", at=T0 + 1)
    await started(store, "other", user_id="u2")
    assert [f.id for f in await store.list_families("u1")] == ["f2", "f3", "f1"]
    await store.revoke_family("f3", "logout", T0 + 5)
    assert [f.id for f in await store.list_families("u1")] == ["f2", "f1"]
    everything = await store.list_families("u1", active_only=False)
    assert [f.id for f in everything] == ["f2", "f3", "f1"]
    assert [f.active for f in everything] == [True, False, True]
    assert list(await store.list_families("nobody")) == []


# rotation --------------------------------------------------------------------------------


async def test_full_refresh_chain(store: Store) -> None:
    token = await started(store)
    chain = [token]
    for n in range(1, 5):
        token = await rotate(store, token, f"r{n}", T0 + n * 60)
        chain.append(token)
    for n, member in enumerate(chain[:-1]):
        stored = await store.get_refresh(member.token_hash)
        assert stored == replace(member, state=USED, used_at=T0 + (n + 1) * 60)
    assert await store.get_refresh(token.token_hash) == token
    assert [t.generation for t in chain] == [0, 1, 2, 3, 4]
    fam = await store.get_family("f1")
    assert fam is not None
    assert (fam.last_used_at, fam.idle_expires_at) == (T0 + 240, T0 + 240 + DAY)
    assert fam.created_at == T0 and fam.expires_at == T0 + 30 * DAY  # absolute lifetime stays


async def test_rotate_used_token_is_reused_with_the_token_as_it_was(store: Store) -> None:
    r0 = await started(store)
    r1 = await rotate(store, r0, "r1", T0 + 60)
    fam_before = await store.get_family("f1")
    late = child(r0, "late", T0 + 120)
    result = await store.rotate_refresh(r0.token_hash, late, T0 + 120, T0 + 120 + DAY)
    assert result == RotateResult(RotateOutcome.REUSED, replace(r0, state=USED, used_at=T0 + 60))
    assert await store.get_refresh(late.token_hash) is None  # no child for a reused token
    assert await store.get_refresh(r1.token_hash) == r1
    assert await store.get_family("f1") == fam_before  # nor a touch of the family


async def test_rotate_revoked_token_is_reused(store: Store) -> None:
    r0 = await started(store)
    await store.revoke_family("f1", "logout", T0 + 1)
    result = await store.rotate_refresh(r0.token_hash, child(r0, "r1", T0 + 2), T0 + 2, T0 + DAY)
    assert result == RotateResult(RotateOutcome.REUSED, replace(r0, state=REVOKED))
    assert await store.get_refresh(h("r1")) is None


async def test_rotate_unknown_token(store: Store) -> None:
    r0 = await started(store)
    stray = child(r0, "stray", T0 + 1)
    result = await store.rotate_refresh(h("unknown"), stray, T0 + 1, T0 + DAY)
    assert result == RotateResult(RotateOutcome.UNKNOWN, None)
    assert await store.get_refresh(stray.token_hash) is None


async def test_rotate_is_all_or_nothing(store: Store) -> None:
    r0 = await started(store)
    r1 = await rotate(store, r0, "r1", T0 + 60)
    clash = replace(child(r1, "r2", T0 + 120), token_hash=r0.token_hash)  # insert fails
    with pytest.raises(Conflict):
        await store.rotate_refresh(r1.token_hash, clash, T0 + 120, T0 + DAY)
    assert await store.get_refresh(r1.token_hash) == r1  # the compare-and-set rolled back
    await rotate(store, r1, "r2", T0 + 180)


async def test_concurrent_rotations_exactly_one_wins(store: Store) -> None:
    r0 = await started(store)
    children = [child(r0, f"c{n}", T0 + 60) for n in range(20)]
    results: list[RotateResult] = []

    async def attempt(new: RefreshToken) -> None:
        results.append(await store.rotate_refresh(r0.token_hash, new, T0 + 60, T0 + DAY))

    async with anyio.create_task_group() as tg:
        for new in children:
            tg.start_soon(attempt, new)

    outcomes = [r.outcome for r in results]
    assert outcomes.count(RotateOutcome.ROTATED) == 1
    assert outcomes.count(RotateOutcome.REUSED) == 19
    assert all(
        r.token is not None and r.token.state is USED
        for r in results
        if r.outcome is RotateOutcome.REUSED
    )
    members = [c for c in children if await store.get_refresh(c.token_hash) is not None]
    assert len(members) == 1
    assert await state(store, members[0]) is ACTIVE
    assert await state(store, r0) is USED


# grace-window regrant --------------------------------------------------------------------


async def test_regrant_replaces_the_active_child(store: Store) -> None:
    r0 = await started(store)
    r1 = await rotate(store, r0, "r1", T0 + 60)
    again = child(r0, "r1-again", T0 + 61)
    replaced = await store.regrant_refresh(r0.token_hash, again, T0 + 61, T0 + 61 + DAY)
    assert replaced is not None and replaced.token_hash == r1.token_hash
    assert replaced.access_jti == r1.access_jti  # so the caller can deny its access token
    assert await state(store, r1) is REVOKED
    assert await store.get_refresh(again.token_hash) == again
    assert await state(store, r0) is USED
    fam = await store.get_family("f1")
    assert fam is not None and (fam.last_used_at, fam.idle_expires_at) == (T0 + 61, T0 + 61 + DAY)
    await rotate(store, again, "r2", T0 + 120)  # the replacement rotates normally


async def test_regrant_happens_once_per_parent(store: Store) -> None:
    r0 = await started(store)
    await rotate(store, r0, "r1", T0 + 60)
    first = child(r0, "again", T0 + 61)
    assert await store.regrant_refresh(r0.token_hash, first, T0 + 61, T0 + DAY) is not None
    second = child(r0, "again2", T0 + 62)
    assert await store.regrant_refresh(r0.token_hash, second, T0 + 62, T0 + DAY) is None
    assert await store.get_refresh(second.token_hash) is None
    assert await state(store, first) is ACTIVE


async def test_regrant_without_an_active_child_is_refused(store: Store) -> None:
    r0 = await started(store)
    r1 = await rotate(store, r0, "r1", T0 + 60)
    await rotate(store, r1, "r2", T0 + 120)  # r1 moved on: r0 is no longer "the previous"
    late = child(r0, "late", T0 + 121)
    assert await store.regrant_refresh(r0.token_hash, late, T0 + 121, T0 + DAY) is None
    assert await store.get_refresh(late.token_hash) is None
    fresh = child(r0, "fresh", T0 + 1)
    assert await store.regrant_refresh(h("unknown"), fresh, T0 + 1, T0 + DAY) is None
    assert await store.get_refresh(fresh.token_hash) is None


async def test_regrant_in_a_revoked_family_is_refused(store: Store) -> None:
    r0 = await started(store)
    await rotate(store, r0, "r1", T0 + 60)
    await store.revoke_family("f1", "reuse", T0 + 61)
    late = child(r0, "late", T0 + 62)
    assert await store.regrant_refresh(r0.token_hash, late, T0 + 62, T0 + DAY) is None
    assert await store.get_refresh(late.token_hash) is None


async def test_concurrent_regrants_leave_one_active_child(store: Store) -> None:
    r0 = await started(store)
    r1 = await rotate(store, r0, "r1", T0 + 60)
    regrants = [child(r0, f"g{n}", T0 + 61) for n in range(10)]
    answers: list[bool] = []

    async def attempt(new: RefreshToken) -> None:
        got = await store.regrant_refresh(r0.token_hash, new, T0 + 61, T0 + DAY)
        answers.append(got is not None)

    async with anyio.create_task_group() as tg:
        for new in regrants:
            tg.start_soon(attempt, new)
    # exactly one regrant wins; the others find the grace spent
    assert sorted(answers) == [False] * 9 + [True]
    states = [await state(store, t) for t in [r1, *regrants]]
    assert states.count(ACTIVE) == 1
    assert await state(store, r1) is REVOKED


# revocation ------------------------------------------------------------------------------


async def _chain(store: Store, fid: str, user_id: str = "u1") -> list[RefreshToken]:
    r0 = await started(store, fid, user_id)
    r1 = await rotate(store, r0, f"{fid}-r1", T0 + 60)
    r2 = await rotate(store, r1, f"{fid}-r2", T0 + 120)
    return [r0, r1, r2]


def _jtis(tokens: list[RefreshToken]) -> set[tuple[str, float]]:
    return {(t.access_jti, t.access_exp) for t in tokens if t.access_jti}


async def test_revoke_family(store: Store) -> None:
    r0, r1, r2 = await _chain(store, "f1")
    silent = child(r2, "no-access-token", T0 + 180, jti="")
    await store.rotate_refresh(r2.token_hash, silent, T0 + 180, T0 + DAY)
    denied = await store.revoke_family("f1", "logout", T0 + 200)
    assert set(denied) == _jtis([r0, r1, r2])
    assert len(denied) == 3
    assert [await state(store, t) for t in (r0, r1, r2, silent)] == [USED, USED, USED, REVOKED]
    fam = await store.get_family("f1")
    assert fam is not None and (fam.revoked_at, fam.revoke_reason) == (T0 + 200, "logout")
    assert not fam.active


async def test_revoke_family_again_keeps_the_first_reason(store: Store) -> None:
    tokens = await _chain(store, "f1")
    await store.revoke_family("f1", "logout", T0 + 200)
    denied = await store.revoke_family("f1", "admin", T0 + 300)
    assert set(denied) == _jtis(tokens)  # denying again is harmless
    fam = await store.get_family("f1")
    assert fam is not None and (fam.revoked_at, fam.revoke_reason) == (T0 + 200, "logout")


async def test_revoke_unknown_family(store: Store) -> None:
    assert list(await store.revoke_family("nope", "logout", T0)) == []


async def test_revoke_leaves_other_families_alone(store: Store) -> None:
    await _chain(store, "f1")
    other = await _chain(store, "f2")
    await store.revoke_family("f1", "logout", T0 + 200)
    assert await state(store, other[-1]) is ACTIVE
    fam = await store.get_family("f2")
    assert fam is not None and fam.active


async def test_revoke_user_families_keeps_one(store: Store) -> None:
    f1, f2, f3 = [await _chain(store, fid) for fid in ("f1", "f2", "f3")]
    theirs = await _chain(store, "g1", user_id="u2")
    denied = await store.revoke_user_families("u1", "password_change", T0 + 300, keep="f2")
    assert set(denied) == _jtis(f1) | _jtis(f3)
    assert len(denied) == 6
    assert [await state(store, t[-1]) for t in (f1, f2, f3, theirs)] == [
        REVOKED,
        ACTIVE,
        REVOKED,
        ACTIVE,
    ]
    assert [f.id for f in await store.list_families("u1")] == ["f2"]
    revoked = await store.get_family("f1")
    assert revoked is not None and revoked.revoke_reason == "password_change"
    # families already revoked are not revoked (nor reported) again
    assert set(await store.revoke_user_families("u1", "logout_all", T0 + 400)) == _jtis(f2)
    assert list(await store.revoke_user_families("u1", "logout_all", T0 + 500)) == []
    unchanged = await store.get_family("f1")
    assert unchanged == revoked


async def test_revoke_user_families_of_nobody(store: Store) -> None:
    assert list(await store.revoke_user_families("nobody", "logout_all", T0)) == []


async def test_rotation_after_revocation_is_reuse(store: Store) -> None:
    *_, last = await _chain(store, "f1")
    await store.revoke_user_families("u1", "disabled", T0 + 200)
    result = await store.rotate_refresh(last.token_hash, child(last, "x", T0 + 201), T0 + 201, T0)
    assert result.outcome is RotateOutcome.REUSED
    assert result.token == replace(last, state=REVOKED)


async def test_rotation_racing_revocation_never_deadlocks(store: Store) -> None:
    """A reuse-triggered revoke and a rotation of the same family, at the same moment."""
    firsts = [await started(store, f"f{n}") for n in range(15)]
    results: list[RotateResult] = []

    async def rotate_one(token: RefreshToken) -> None:
        new = child(token, f"{token.family_id}-r1", T0 + 1)
        results.append(await store.rotate_refresh(token.token_hash, new, T0 + 1, T0 + DAY))

    async with anyio.create_task_group() as tg:
        for token in firsts:
            tg.start_soon(rotate_one, token)
            tg.start_soon(store.revoke_family, token.family_id, "reuse", T0 + 1)
            tg.start_soon(store.revoke_user_families, "u1", "logout_all", T0 + 1)
    assert len(results) == 15
    for token in firsts:  # whichever came first, everything ends revoked
        fam = await store.get_family(token.family_id)
        assert fam is not None and not fam.active
        assert await state(store, child(token, f"{token.family_id}-r1", T0 + 1)) in {None, REVOKED}
