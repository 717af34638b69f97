"""Admin API under /api/v1/admin: role checks, users, revocation, key rotation, audit.

Tokens come from the real login endpoint; revocation is observed at /api/v1/me (this
node's verifier) and at /oauth2/introspect (the store's view) right after the call.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.keystore import load_keyring, master_key
from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.clients import Clients
from tokenward.store.base import User

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio

ADMIN = "/api/v1/admin"
NEW_PASSWORD = "a brand new passphrase 42"


# -- helpers -------------------------------------------------------------------------------
async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await http.post("/api/v1/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def kid_of(token: str) -> str:
    seg = token.split(".", maxsplit=1)[0]
    return str(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))["kid"])


async def me(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/api/v1/me", headers=bearer(token))).status_code


class World:
    """An admin, two users, a resource server client; everyone logged in once."""

    def __init__(self, http: httpx.AsyncClient, ctx: AppContext) -> None:
        self.http, self.ctx = http, ctx
        self.users: dict[str, User] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.rs_auth: dict[str, str] = {}

    async def setup(self) -> World:
        accounts = Accounts(self.ctx)
        for name, roles in (("root", ["admin"]), ("alice", []), ("bob", ["reader"])):
            self.users[name] = await accounts.create(name, PASSWORD, roles=roles)
            self.tokens[name] = await login(self.http, name)
        _, secret = await Clients(self.ctx).create("rs", "RS", [], ["client_credentials"])
        assert secret is not None
        raw = base64.b64encode(f"rs:{secret}".encode()).decode()
        self.rs_auth = {"Authorization": f"Basic {raw}"}
        return self

    def access(self, name: str) -> str:
        return str(self.tokens[name]["access_token"])

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(
            method, ADMIN + path, headers=bearer(self.access("root")), **kwargs
        )

    async def active(self, token: str) -> bool:
        r = await self.http.post("/oauth2/introspect", data={"token": token}, headers=self.rs_auth)
        assert r.status_code == 200, r.text
        return bool(r.json()["active"])


@pytest.fixture
async def world(client: httpx.AsyncClient, ctx: AppContext) -> World:
    return await World(client, ctx).setup()


ENDPOINTS = [
    ("POST", "/users", {"username": "eve", "password": NEW_PASSWORD, "roles": ["admin"]}),
    ("GET", "/users", None),
    ("POST", "/users/{id}/disable", None),
    ("POST", "/users/{id}/enable", None),
    ("POST", "/users/{id}/unlock", None),
    ("POST", "/users/{id}/revoke-tokens", None),
    ("POST", "/revoke-all", None),
    ("POST", "/keys/rotate", None),
    ("GET", "/audit", None),
]


# -- access control ------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_admin_endpoints_need_the_admin_role(
    world: World, ctx: AppContext, method: str, path: str, body: Any
) -> None:
    url = ADMIN + path.format(id=world.users["alice"].id)
    r = await world.http.request(method, url, json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="tokenward"'
    r = await world.http.request(method, url, json=body, headers=bearer("not.a.token"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await world.http.request(method, url, json=body, headers=bearer(world.access("bob")))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    # nothing happened: no user was made, nobody's tokens died, no key was rotated
    assert await ctx.store.get_user_by_name("eve") is None
    assert await me(world.http, world.access("alice")) == 200
    assert kid_of(world.access("alice")) == ctx.ring.signing_key().kid


# -- users ---------------------------------------------------------------------------------
async def test_create_user_returns_201_without_the_hash_and_the_user_can_log_in(
    world: World, ctx: AppContext
) -> None:
    body = {"username": "carol", "password": NEW_PASSWORD, "roles": ["editor", "admin"]}
    r = await world.admin("POST", "/users", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["username"] == "carol"
    assert created["roles"] == ["editor", "admin"]
    assert created["disabled"] is False
    assert "hash" not in r.text and NEW_PASSWORD not in r.text and "argon2" not in r.text
    tokens = await login(world.http, "carol", NEW_PASSWORD)
    claims = ctx.verifier.verify(tokens["access_token"])
    assert claims["sub"] == created["id"]
    assert sorted(claims["roles"]) == ["admin", "editor"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "alice", "password": NEW_PASSWORD}, 409),
        ({"username": "dave", "password": "short"}, 400),
        ({"username": "dave", "password": "password"}, 400),
        ({"username": "dave", "password": NEW_PASSWORD, "roles": ["Not A Role!"]}, 400),
        ({"username": "dave", "password": NEW_PASSWORD, "extra": 1}, 400),
        ({"username": "d" * 65, "password": NEW_PASSWORD}, 400),
        ({"username": "dave"}, 400),
        ({"username": "dave", "password": NEW_PASSWORD, "roles": "admin"}, 400),
        ([], 400),
    ],
)
async def test_create_user_rejects_bad_input_with_4xx(
    world: World, ctx: AppContext, body: Any, status: int
) -> None:
    r = await world.admin("POST", "/users", json=body)
    assert r.status_code == status, r.text
    assert NEW_PASSWORD not in r.text
    assert await ctx.store.get_user_by_name("dave") is None


async def test_list_users_never_shows_hashes(world: World) -> None:
    r = await world.admin("GET", "/users")
    assert r.status_code == 200
    names = {u["username"] for u in r.json()}
    assert names == {"root", "alice", "bob"}
    assert all("password_hash" not in u for u in r.json())
    assert "argon2" not in r.text


async def test_disable_kills_tokens_and_login_and_enable_restores_login(world: World) -> None:
    alice = world.users["alice"]
    r = await world.admin("POST", f"/users/{alice.id}/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert await me(world.http, world.access("alice")) == 401
    assert not await world.active(world.access("alice"))
    r = await world.http.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401
    assert await me(world.http, world.access("bob")) == 200  # others unaffected
    r = await world.admin("POST", f"/users/{alice.id}/enable")
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert await me(world.http, (await login(world.http, "alice"))["access_token"]) == 200


async def test_admin_cannot_disable_themselves_and_unknown_users_are_404(world: World) -> None:
    r = await world.admin("POST", f"/users/{world.users['root'].id}/disable")
    assert r.status_code == 400
    assert await me(world.http, world.access("root")) == 200
    for path in ("disable", "enable", "unlock", "revoke-tokens"):
        r = await world.admin("POST", f"/users/nope/{path}")
        assert r.status_code == 404, (path, r.text)


async def test_unlock_clears_the_lockout(world: World, ctx: AppContext) -> None:
    alice = world.users["alice"]
    await ctx.store.update_user(alice.id, failed_logins=9, locked_until=ctx.clock() + 3600)
    r = await world.http.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 429
    r = await world.admin("POST", f"/users/{alice.id}/unlock")
    assert r.status_code == 200
    assert r.json()["locked_until"] is None and r.json()["failed_logins"] == 0
    await login(world.http, "alice")


# -- revocation ----------------------------------------------------------------------------
async def test_revoke_user_tokens_kills_that_users_tokens_at_once(
    world: World, ctx: AppContext
) -> None:
    alice = world.users["alice"]
    second = await login(world.http, "alice")
    assert await me(world.http, world.access("alice")) == 200  # warm the verifier cache
    r = await world.admin("POST", f"/users/{alice.id}/revoke-tokens")
    assert r.status_code == 200, r.text
    assert r.json()["token_version"] == 1
    assert r.json()["sessions_ended"] == 2
    for token in (world.access("alice"), second["access_token"]):
        assert await me(world.http, token) == 401
        assert not await world.active(token)
    # and their refresh tokens cannot mint new ones
    r = await world.http.post("/api/v1/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code in (400, 401), r.text
    # other users are untouched
    for name in ("bob", "root"):
        assert await me(world.http, world.access(name)) == 200
        assert await world.active(world.access(name))
    # alice can sign in again and gets working tokens
    fresh = await login(world.http, "alice")
    assert await me(world.http, fresh["access_token"]) == 200
    assert ctx.verifier.verify(fresh["access_token"])["tv"] == 1


async def test_revoke_all_kills_every_token_and_new_logins_work(
    world: World, ctx: AppContext, clock: FrozenClock
) -> None:
    clock.advance(5)
    r = await world.admin("POST", "/revoke-all")
    assert r.status_code == 200, r.text
    assert r.json()["epoch"] > ctx.clock()
    assert r.json()["sessions_ended"] == 3
    for name in ("root", "alice", "bob"):
        assert await me(world.http, world.access(name)) == 401
        assert not await world.active(world.access(name))
        refresh = world.tokens[name]["refresh_token"]
        r = await world.http.post("/api/v1/refresh", json={"refresh_token": refresh})
        assert r.status_code in (400, 401), r.text
    clock.advance(1)  # the epoch is the next whole second (iat has one-second granularity)
    for name in ("root", "alice"):
        fresh = await login(world.http, name)
        assert await me(world.http, fresh["access_token"]) == 200
        assert await world.active(fresh["access_token"])


# -- keys ----------------------------------------------------------------------------------
async def test_rotate_keys_signs_with_the_new_key_and_keeps_the_old_one(
    world: World, ctx: AppContext
) -> None:
    old_token = world.access("alice")
    old_kid = kid_of(old_token)
    r = await world.admin("POST", "/keys/rotate")
    assert r.status_code == 200, r.text
    new_kid = r.json()["kid"]
    assert new_kid != old_kid and r.json()["retiring"] == old_kid
    fresh = await login(world.http, "alice")
    assert kid_of(fresh["access_token"]) == new_kid
    assert await me(world.http, fresh["access_token"]) == 200
    assert await me(world.http, old_token) == 200  # the retiring key still verifies
    jwks = (await world.http.get("/.well-known/jwks.json")).json()
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k for k in jwks["keys"])  # public keys only
    # persisted: a restart signs with the new key
    settings = ctx.settings
    saved = load_keyring(settings.data_dir, master_key(settings.data_dir, None, create=False))
    states = {k.kid: str(k.state) for k in saved}
    assert states[new_kid] == "active" and states[old_kid] == "retiring"


# -- audit ---------------------------------------------------------------------------------
async def test_audit_lists_admin_actions_newest_first_with_filters(
    world: World, ctx: AppContext, clock: FrozenClock
) -> None:
    alice, root = world.users["alice"], world.users["root"]
    clock.advance(1)
    await world.admin("POST", f"/users/{alice.id}/disable")
    clock.advance(1)
    await world.admin("POST", f"/users/{alice.id}/revoke-tokens")
    clock.advance(1)
    await world.admin("POST", "/keys/rotate")
    clock.advance(1)
    r = await world.admin(
        "POST", "/users", json={"username": "carol", "password": NEW_PASSWORD, "roles": []}
    )
    assert r.status_code == 201

    r = await world.admin("GET", "/audit", params={"limit": 1000})
    assert r.status_code == 200
    events = r.json()
    times = [e["at"] for e in events]
    assert times == sorted(times, reverse=True)
    types = [e["type"] for e in events]
    assert types.index("keys.rotated") < types.index("tokens.revoked_user")
    assert types.index("tokens.revoked_user") < types.index("user.disabled")
    assert types.index("user.disabled") < types.index("login.succeeded")
    by_type = {e["type"]: e for e in events}
    assert by_type["tokens.revoked_user"]["data"]["actor_id"] == root.id
    assert by_type["tokens.revoked_user"]["user_id"] == alice.id
    assert by_type["keys.rotated"]["data"]["actor_id"] == root.id
    actions = {e["data"]["action"]: e for e in events if e["type"] == "admin.action"}
    assert set(actions) >= {"user.disabled", "user.created"}
    assert all(e["data"]["actor_id"] == root.id for e in actions.values())

    r = await world.admin("GET", "/audit", params={"type": "user.created"})
    assert [e["username"] for e in r.json()] == ["carol", "bob", "alice", "root"]
    r = await world.admin("GET", "/audit", params={"user_id": alice.id, "limit": 2})
    assert len(r.json()) == 2
    assert all(e["user_id"] == alice.id for e in r.json())
    assert r.json()[0]["type"] in {"tokens.revoked_user", "session.revoked"}

    secrets = [PASSWORD, NEW_PASSWORD, *world.rs_auth.values()]
    for tokens in world.tokens.values():
        secrets += [tokens["access_token"], tokens["refresh_token"]]
    full = (await world.admin("GET", "/audit", params={"limit": 1000})).text
    for secret in secrets:
        assert secret not in full
    assert world.rs_auth["Authorization"].split()[1] not in full


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 100_000},
        {"limit": "many"},
        {"type": "DROP TABLE"},
        {"user_id": "x" * 200},
    ],
)
async def test_audit_query_validation_is_400(world: World, params: dict[str, Any]) -> None:
    r = await world.admin("GET", "/audit", params=params)
    assert r.status_code == 400, r.text
