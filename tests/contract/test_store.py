"""The Store contract, part 1: lifecycle, users, clients, deny-list, epoch, audit.

Every test runs against each backend (memory, SQLite, PostgreSQL when configured).
"""

from __future__ import annotations

import anyio
import pytest

from tests.contract.conftest import Backend
from tests.contract.records import T0, client, event, user
from tokenward.errors import Conflict, NotFound
from tokenward.store.base import Store

pytestmark = pytest.mark.anyio


# lifecycle -------------------------------------------------------------------------------


async def test_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


async def test_ping(store: Store) -> None:
    assert await store.ping() is True


async def test_migrate_twice_is_a_no_op(store: Store) -> None:
    await store.add_user(user(1))
    await store.migrate()  # the fixture migrated once already
    await store.migrate()
    assert await store.get_user("u1") == user(1)


async def test_close_is_idempotent_and_ping_then_fails(backend: Backend) -> None:
    opened = backend.open()
    await opened.migrate()
    await opened.close()
    await opened.close()
    assert await opened.ping() is False


# users -----------------------------------------------------------------------------------


async def test_user_round_trip(store: Store) -> None:
    stored = user(1, roles=("admin", "ops"), locked_until=T0 + 0.5, failed_logins=3)
    await store.add_user(stored)
    assert await store.get_user("u1") == stored
    assert await store.get_user_by_name("user1") == stored
    assert await store.get_user("nobody") is None
    assert await store.get_user_by_name("nobody") is None


async def test_list_users_sorted_by_name(store: Store) -> None:
    for n in (3, 1, 2):
        await store.add_user(user(n))
    assert [u.username for u in await store.list_users()] == ["user1", "user2", "user3"]


async def test_taken_username_conflicts(store: Store) -> None:
    await store.add_user(user(1))
    with pytest.raises(Conflict):
        await store.add_user(user(2, username="user1"))
    assert await store.get_user("u2") is None


async def test_taken_user_id_conflicts(store: Store) -> None:
    await store.add_user(user(1))
    with pytest.raises(Conflict):
        await store.add_user(user(1, username="other"))
    assert await store.get_user_by_name("other") is None


async def test_update_user_changes_only_the_given_fields(store: Store) -> None:
    await store.add_user(user(1, roles=("reader",), failed_logins=2))
    updated = await store.update_user("u1", roles=["admin", "reader"], disabled=True)
    assert updated == user(1, roles=("admin", "reader"), disabled=True, failed_logins=2)
    assert await store.get_user("u1") == updated
    cleared = await store.update_user("u1", locked_until=None, failed_logins=0)
    assert cleared == user(1, roles=("admin", "reader"), disabled=True)


async def test_update_user_lock_and_password(store: Store) -> None:
    await store.add_user(user(1))
    updated = await store.update_user(
        "u1", locked_until=T0 + 60, password_hash="$argon2id$new", password_changed_at=T0 + 1
    )
    assert updated == user(
        1, locked_until=T0 + 60, password_hash="$argon2id$new", password_changed_at=T0 + 1
    )


async def test_update_user_without_changes_returns_it(store: Store) -> None:
    await store.add_user(user(1))
    assert await store.update_user("u1") == user(1)


async def test_update_unknown_user_is_none(store: Store) -> None:
    assert await store.update_user("nobody", disabled=True) is None
    assert await store.update_user("nobody") is None


async def test_update_user_unknown_field_changes_nothing(store: Store) -> None:
    await store.add_user(user(1))
    with pytest.raises(TypeError, match="colour"):
        await store.update_user("u1", disabled=True, colour="red")
    with pytest.raises(TypeError, match="id"):
        await store.update_user("u1", id="u9")
    with pytest.raises(TypeError, match="roles"):
        await store.update_user("u1", roles="admin")
    assert await store.get_user("u1") == user(1)


async def test_update_user_to_a_taken_name_conflicts(store: Store) -> None:
    await store.add_user(user(1))
    await store.add_user(user(2))
    with pytest.raises(Conflict):
        await store.update_user("u2", username="user1", disabled=True)
    assert await store.get_user("u2") == user(2)
    assert await store.update_user("u2", username="user2") == user(2)  # its own name is fine


async def test_bump_token_version(store: Store) -> None:
    await store.add_user(user(1))
    assert await store.bump_token_version("u1") == 1
    assert await store.bump_token_version("u1") == 2
    stored = await store.get_user("u1")
    assert stored is not None and stored.token_version == 2


async def test_login_failures_count_atomically_and_locks_only_grow(store: Store) -> None:
    await store.add_user(user(1))

    def lock_for(failures: int) -> float | None:
        return T0 + failures if failures >= 3 else None

    assert await store.record_login_failure("u1", lock_for) == (1, None)
    assert await store.record_login_failure("u1", lock_for) == (2, None)
    assert await store.record_login_failure("u1", lock_for) == (3, T0 + 3)
    async with anyio.create_task_group() as tg:  # concurrent wrong guesses all count
        for _ in range(40):
            tg.start_soon(store.record_login_failure, "u1", lock_for)
    stored = await store.get_user("u1")
    assert stored is not None and stored.failed_logins == 43
    assert stored.locked_until == T0 + 43  # the longest lock earned, whatever the order
    await store.update_user("u1", locked_until=T0 + 1000)  # a longer lock stays
    assert await store.record_login_failure("u1", lock_for) == (44, T0 + 1000)
    with pytest.raises(NotFound):
        await store.record_login_failure("nobody", lock_for)


async def test_bump_token_version_of_unknown_user(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.bump_token_version("nobody")


async def test_bump_token_version_is_atomic(store: Store) -> None:
    await store.add_user(user(1))
    seen: list[int] = []

    async def bump() -> None:
        seen.append(await store.bump_token_version("u1"))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(bump)
    assert sorted(seen) == list(range(1, 21))
    stored = await store.get_user("u1")
    assert stored is not None and stored.token_version == 20


# clients ---------------------------------------------------------------------------------


async def test_client_round_trip(store: Store) -> None:
    confidential = client("app")
    public = client("spa", secret_hash=None, grant_types=("authorization_code",), disabled=True)
    await store.add_client(public)
    await store.add_client(confidential)
    assert await store.get_client("app") == confidential
    assert await store.get_client("spa") == public
    assert await store.get_client("nobody") is None
    assert list(await store.list_clients()) == [confidential, public]


async def test_taken_client_id_conflicts(store: Store) -> None:
    await store.add_client(client("app"))
    with pytest.raises(Conflict):
        await store.add_client(client("app", name="Another"))
    assert await store.get_client("app") == client("app")


# deny-list and epoch ---------------------------------------------------------------------


async def test_denied_lists_entries_until_they_expire(store: Store) -> None:
    await store.deny_jti("a", T0 + 10)
    await store.deny_jti("b", T0 + 20)
    assert sorted(await store.denied(T0)) == [("a", T0 + 10), ("b", T0 + 20)]
    assert list(await store.denied(T0 + 10)) == [("b", T0 + 20)]  # exp is exclusive
    assert list(await store.denied(T0 + 20)) == []


async def test_deny_again_keeps_the_later_expiry(store: Store) -> None:
    await store.deny_jti("a", T0 + 10)
    await store.deny_jti("a", T0 + 30)
    await store.deny_jti("a", T0 + 20)
    assert list(await store.denied(T0)) == [("a", T0 + 30)]


async def test_epoch(store: Store) -> None:
    assert await store.get_epoch() == 0.0
    await store.set_epoch(T0)
    assert await store.get_epoch() == T0
    await store.set_epoch(T0 + 1.25)
    assert await store.get_epoch() == T0 + 1.25


# audit -----------------------------------------------------------------------------------


async def test_audit_newest_first(store: Store) -> None:
    events = [
        event("e1", T0),
        event("e2", T0 + 2),
        event("e3", T0 + 1),
        event("e4", T0 + 2),  # same time as e2, written later: shown first
    ]
    for e in events:
        await store.add_audit(e)
    listed = await store.list_audit()
    assert [e.id for e in listed] == ["e4", "e2", "e3", "e1"]
    assert listed[-1] == events[0]  # every field (and nested data) round-trips


async def test_audit_filters_and_limit(store: Store) -> None:
    await store.add_audit(event("e1", T0, "login", "u1"))
    await store.add_audit(event("e2", T0 + 1, "logout", "u1"))
    await store.add_audit(event("e3", T0 + 2, "login", "u2"))
    await store.add_audit(event("e4", T0 + 3, "login", None))
    ids = [e.id for e in await store.list_audit(limit=2)]
    assert ids == ["e4", "e3"]
    assert [e.id for e in await store.list_audit(user_id="u1")] == ["e2", "e1"]
    assert [e.id for e in await store.list_audit(type="login")] == ["e4", "e3", "e1"]
    assert [e.id for e in await store.list_audit(type="login", user_id="u1")] == ["e1"]
    assert [e.id for e in await store.list_audit(type="login", limit=1)] == ["e4"]
    assert list(await store.list_audit(limit=0)) == []
    assert list(await store.list_audit(type="nothing")) == []


async def test_audit_event_id_is_unique(store: Store) -> None:
    await store.add_audit(event("e1", T0))
    with pytest.raises(Conflict):
        await store.add_audit(event("e1", T0 + 1))
    assert len(await store.list_audit()) == 1


async def test_audit_data_is_a_copy(store: Store) -> None:
    written = event("e1", T0)
    await store.add_audit(written)
    written.data["n"] = "changed after writing"
    listed = await store.list_audit()
    listed[0].data["n"] = "changed after reading"
    assert (await store.list_audit())[0].data["n"] == "e1"
