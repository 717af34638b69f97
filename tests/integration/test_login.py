"""POST /api/v1/login: tokens, no user enumeration, lockout, rehash (SECURITY.md "Accounts")."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import jwt
import pytest

from tokenward import FrozenClock, Verifier
from tokenward.errors import BadRequest, Conflict
from tokenward.server.audit import RequestInfo
from tokenward.server.context import FIRST_PARTY_CLIENT, AppContext
from tokenward.server.passwords import Passwords
from tokenward.server.ratelimit import Limiter
from tokenward.server.services.accounts import Accounts
from tokenward.store.base import User

from ..conftest import T0
from .conftest import ISSUER, PASSWORD

pytestmark = pytest.mark.anyio
WRONG = "not the right password"


@pytest.fixture
async def alice(ctx: AppContext) -> User:
    return await Accounts(ctx).create("alice", PASSWORD, roles=["user", "billing"])


async def login(
    client: httpx.AsyncClient, username: str = "alice", password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/login", json={"username": username, "password": password, **extra}
    )


# -- success ----------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_pair(client: httpx.AsyncClient, alice: User) -> None:
    response = await login(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) == 43  # 256 random bits, base64url
    assert response.headers["cache-control"] == "no-store"


async def test_access_token_verifies_against_the_published_jwks(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    token = (await login(client)).json()["access_token"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = Verifier(jwks, issuer=ISSUER, audience=ISSUER, clock=clock).verify(token)
    assert claims["sub"] == alice.id
    assert claims["roles"] == ["user", "billing"]
    assert claims["tv"] == 0
    assert claims["client_id"] == FIRST_PARTY_CLIENT
    assert claims["exp"] == int(T0) + 900
    family = await ctx.store.get_family(claims["sid"])
    assert family is not None and family.user_id == alice.id


async def test_access_token_verifies_with_pyjwt(client: httpx.AsyncClient, alice: User) -> None:
    token = (await login(client)).json()["access_token"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    # PyJWT reads the wall clock; our tokens live on the frozen one, so exp is checked below.
    claims = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=ISSUER,
        issuer=ISSUER,
        options={"verify_exp": False},
    )
    assert claims["sub"] == alice.id
    assert claims["exp"] - claims["iat"] == 900
    with pytest.raises(jwt.InvalidSignatureError):
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        jwt.decode(
            tampered,
            key,
            algorithms=[header["alg"]],
            audience=ISSUER,
            options={"verify_exp": False},
        )


async def test_login_audits_success_without_the_password(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    await login(client)
    events = await ctx.store.list_audit(type="login.succeeded")
    assert [e.username for e in events] == ["alice"]
    assert events[0].ip == "203.0.113.7"
    assert PASSWORD not in repr(events)
    # written with the session it started: the event names it
    (session,) = await ctx.store.list_families(alice.id)
    assert events[0].session_id == session.id


# -- no enumeration ---------------------------------------------------------------------------


async def test_usernames_are_case_insensitive(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    assert (await login(client, username="ALICE")).status_code == 200
    assert (await login(client, username="Alice")).status_code == 200
    with pytest.raises(Conflict):  # no look-alike second account
        await Accounts(ctx).create("Alice", PASSWORD + "!")
    bob = await Accounts(ctx).create("Bob.Smith", PASSWORD)
    assert bob.username == "bob.smith"  # stored in the one canonical form
    assert (await login(client, username="bob.smith")).status_code == 200
    for _ in range(5):  # one lockout across spellings
        await login(client, username=("BOB.SMITH", "Bob.Smith", "bob.smith")[_ % 3], password=WRONG)
    assert (await login(client, username="bob.SMITH")).status_code == 429


async def test_wrong_password_and_unknown_user_answer_identically(
    client: httpx.AsyncClient, alice: User
) -> None:
    wrong = await login(client, password=WRONG)
    unknown = await login(client, username="mallory", password=WRONG)
    malformed_name = await login(client, username="no such user!", password=WRONG)
    assert wrong.status_code == unknown.status_code == malformed_name.status_code == 401
    assert wrong.json() == unknown.json() == malformed_name.json()
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert "alice" not in wrong.text and WRONG not in wrong.text


async def test_unknown_user_spends_a_dummy_verify(
    client: httpx.AsyncClient, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = Passwords.dummy_verify

    def spy(self: Passwords, password: str) -> None:
        calls.append("dummy")
        original(self, password)

    monkeypatch.setattr(Passwords, "dummy_verify", spy)
    await login(client, username="mallory", password=WRONG)
    assert calls == ["dummy"]


async def test_failed_logins_are_audited_with_the_username_only(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    await login(client, password=WRONG)
    await login(client, username="mallory", password=WRONG)
    events = await ctx.store.list_audit(type="login.failed")
    assert sorted((e.username, e.data["reason"]) for e in events) == [
        ("alice", "bad_password"),
        ("mallory", "unknown_user"),
    ]
    assert WRONG not in repr(events)


# -- lockout ----------------------------------------------------------------------------------


async def test_fifty_wrong_passwords_lock_the_account_until_the_clock_passes(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    statuses = [(await login(client, password=WRONG)).status_code for _ in range(50)]
    assert statuses[:5] == [401] * 5  # threshold 5: the fifth failure locks
    assert statuses[5:] == [429] * 45
    locked = await login(client, password=WRONG)
    assert locked.headers["retry-after"] == "30"
    assert locked.json()["error"] == "rate_limited"

    right = await login(client)  # the right password is refused while locked
    assert right.status_code == 429
    stored = await ctx.store.get_user(alice.id)
    assert stored is not None and stored.failed_logins == 5  # refusals do not count
    assert stored.locked_until == T0 + 30

    clock.advance(29)
    assert (await login(client)).status_code == 429
    clock.advance(1.5)
    assert (await login(client)).status_code == 200
    stored = await ctx.store.get_user(alice.id)
    assert stored is not None and stored.failed_logins == 0 and stored.locked_until is None
    assert len(await ctx.store.list_audit(type="login.locked")) == 1


async def test_concurrent_wrong_passwords_all_count(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    """Guesses sent at once must not hide behind each other (a read-then-write count would
    let a parallel burst register as one failure)."""
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(login, client, "alice", WRONG)
    stored = await ctx.store.get_user(alice.id)
    assert stored is not None and stored.failed_logins == 4 and stored.locked_until is None
    assert (await login(client, password=WRONG)).status_code == 401  # the fifth locks
    assert (await login(client)).status_code == 429


async def test_lockout_doubles_and_is_capped(
    client: httpx.AsyncClient, alice: User, ctx: AppContext, clock: FrozenClock
) -> None:
    for _ in range(5):
        await login(client, password=WRONG)
    seen = []
    for _ in range(3):
        seen.append((await login(client, password=WRONG)).headers["retry-after"])
        clock.advance(int(seen[-1]) + 1)
        assert (await login(client, password=WRONG)).status_code == 401  # one more failure
    assert seen == ["30", "60", "120"]
    await ctx.store.update_user(alice.id, failed_logins=500, locked_until=None)
    await login(client, password=WRONG)
    assert (await login(client)).headers["retry-after"] == "3600"  # lockout_max_seconds


async def test_success_resets_the_failure_count(client: httpx.AsyncClient, alice: User) -> None:
    for _ in range(4):
        assert (await login(client, password=WRONG)).status_code == 401
    assert (await login(client)).status_code == 200
    for _ in range(4):
        assert (await login(client, password=WRONG)).status_code == 401
    assert (await login(client)).status_code == 200


async def test_unlock_lifts_the_lockout(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    for _ in range(5):
        await login(client, password=WRONG)
    assert (await login(client)).status_code == 429
    await Accounts(ctx).unlock(alice.id, request=RequestInfo())
    assert (await login(client)).status_code == 200
    assert [e.user_id for e in await ctx.store.list_audit(type="user.unlocked")] == [alice.id]


async def test_per_ip_rate_limit(client: httpx.AsyncClient, ctx: AppContext) -> None:
    ctx.limiter = Limiter({"login:ip": "3/minute", "login:account": "100/minute"})
    answers = [await login(client, username=f"user{i}", password=WRONG) for i in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1


async def test_per_account_rate_limit(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    ctx.limiter = Limiter({"login:ip": "100/minute", "login:account": "3/minute"})
    answers = [await login(client, password=WRONG) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert (await login(client)).status_code == 429  # even with the right password
    assert (await login(client, username="bob", password=WRONG)).status_code == 401


# -- rehash -----------------------------------------------------------------------------------


async def test_login_rehashes_when_the_parameters_change(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    assert alice.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    ctx.passwords = Passwords(time_cost=2, memory_kib=8192)
    assert (await login(client)).status_code == 200
    stored = await ctx.store.get_user(alice.id)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=8192,t=2,p=1$")
    assert (await login(client)).status_code == 200  # the new hash verifies
    events = await ctx.store.list_audit(type="login.succeeded")
    assert sorted(e.data["rehashed"] for e in events) == [False, True]


async def test_login_keeps_a_current_hash(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    assert (await login(client)).status_code == 200
    stored = await ctx.store.get_user(alice.id)
    assert stored is not None and stored.password_hash == alice.password_hash


# -- accounts ---------------------------------------------------------------------------------


async def test_disabled_user_gets_the_wrong_password_answer(
    client: httpx.AsyncClient, alice: User, ctx: AppContext
) -> None:
    await Accounts(ctx).set_disabled(alice.id, True, request=RequestInfo())
    disabled = await login(client)
    wrong = await login(client, username="mallory", password=WRONG)
    assert disabled.status_code == 401
    assert disabled.json() == wrong.json()
    await Accounts(ctx).set_disabled(alice.id, False, request=RequestInfo())
    assert (await login(client)).status_code == 200


async def test_create_refuses_taken_names_bad_names_and_weak_passwords(
    ctx: AppContext, alice: User
) -> None:
    with pytest.raises(Conflict):
        await Accounts(ctx).create("alice", PASSWORD)
    for name in ("", "has space", "x" * 65, "semi;colon"):
        with pytest.raises(BadRequest):
            await Accounts(ctx).create(name, PASSWORD)
    for weak in ("short", "password1", "bob.the.builder"):
        with pytest.raises(BadRequest):
            await Accounts(ctx).create("bob.the.builder", weak)
    assert await ctx.store.get_user_by_name("bob.the.builder") is None
    created = await ctx.store.list_audit(type="user.created")
    assert [e.username for e in created] == ["alice"]


async def test_lockout_does_not_reveal_which_accounts_exist(
    client: httpx.AsyncClient, alice: User, clock: FrozenClock
) -> None:
    """A real and an unknown name answer the same sequence, 429s and Retry-After included."""

    async def tour(username: str) -> list[tuple[int, str | None, Any]]:
        seen = []
        for _ in range(8):
            r = await login(client, username=username, password=WRONG)
            seen.append((r.status_code, r.headers.get("retry-after"), r.json()))
        clock.advance(31)  # past the first lock: the next failure locks for twice as long
        r = await login(client, username=username, password=WRONG)
        seen.append((r.status_code, r.headers.get("retry-after"), r.json()))
        r = await login(client, username=username, password=WRONG)
        seen.append((r.status_code, r.headers.get("retry-after"), r.json()))
        return seen

    real, unknown = await tour("alice"), await tour("mallory")
    assert [s for s, _, _ in real][:6] == [401] * 5 + [429]
    assert real == unknown
