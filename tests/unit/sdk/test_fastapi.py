"""FastAPI: Depends(require(...)) against the shared table, OpenAPI, per-app configuration."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from tokenward import KeyRing
from tokenward.sdk.fastapi import install, optional, require
from tokenward.sdk.principal import Principal

from .behaviour import CASES, IDS, INVALID, ROUTES, Case, World, check


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


def make_app(world: World | None) -> FastAPI:
    app = FastAPI()
    if world is not None:
        install(app, world.verifier, principal_factory=world.factory)
    for path, need in ROUTES.items():
        dependency = require(scopes=need.scopes, roles=need.roles, permissions=need.permissions)

        async def handler(who: Principal = Depends(dependency)) -> dict[str, str]:
            return {"sub": who.subject}

        app.get(path)(handler)

    @app.get("/maybe")
    async def maybe(who: Principal | None = Depends(optional())) -> dict[str, Any]:
        return {"sub": who.subject if who else None}

    return app


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.example")


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(make_app(world)) as http:
        yield http


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_behaviour_table(client: httpx.AsyncClient, world: World, case: Case) -> None:
    auth = case.authorization(world)
    r = await client.get(case.path, headers={"authorization": auth} if auth else {})
    ctype = r.headers["content-type"]
    check(case, r.status_code, r.headers.get("www-authenticate"), r.json(), ctype)


def test_openapi_documents_an_http_bearer_scheme(world: World) -> None:
    app = make_app(world)
    read = require(scopes="read")

    async def editor(who: Principal = Depends(read)) -> Principal:
        return who

    @app.get("/nested")
    async def nested(
        who: Principal = Depends(editor),
        again: Principal = Depends(require(scopes=["write", "read"])),
    ) -> dict[str, str]:
        return {"sub": who.subject}

    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["tokenward"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token (RFC 9068 at+jwt)",
    }
    paths = schema["paths"]
    assert paths["/any"]["get"]["security"] == [{"tokenward": []}]
    assert paths["/scope"]["get"]["security"] == [{"tokenward": ["write"]}]
    assert paths["/maybe"]["get"]["security"] == [{"tokenward": []}, {}]  # optional
    # Every require() on the way applies: one requirement object, scopes merged (AND).
    assert paths["/nested"]["get"]["security"] == [{"tokenward": ["read", "write"]}]
    assert app.openapi() is schema  # generated once


def test_the_dependency_runs_on_the_event_loop() -> None:
    # A sync dependency would cost a threadpool hop per request.
    assert inspect.iscoroutinefunction(require())
    assert inspect.iscoroutinefunction(optional())


@pytest.mark.anyio
async def test_optional_allows_anonymous_but_not_a_bad_token(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await client.get("/maybe")).json() == {"sub": None}
    ok = await client.get("/maybe", headers={"authorization": f"Bearer {world.token()}"})
    assert ok.json() == {"sub": "alice"}
    bad = await client.get("/maybe", headers={"authorization": f"Bearer {world.expired()}"})
    assert (bad.status_code, bad.headers["www-authenticate"]) == (401, INVALID)


@pytest.mark.anyio
async def test_each_app_has_its_own_verifier(world: World, make_ring: Any) -> None:
    other = World(make_ring("EdDSA"))
    token = world.token()
    async with await client_for(make_app(world)) as a, await client_for(make_app(other)) as b:
        assert (await a.get("/any", headers={"authorization": f"Bearer {token}"})).is_success
        refused = await b.get("/any", headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 401


@pytest.mark.anyio
async def test_require_without_install_is_a_clear_error(world: World) -> None:
    async with await client_for(make_app(None)) as http:
        with pytest.raises(RuntimeError, match="install"):
            await http.get("/any", headers={"authorization": f"Bearer {world.token()}"})


@pytest.mark.anyio
async def test_the_guard_is_found_on_any_app_state(world: World) -> None:
    # The dependency reads Starlette's State storage directly (a per-request saving); an
    # app.state of another kind must still work, through plain attribute access.
    app = make_app(world)
    app.state = SimpleNamespace(tokenward=app.state.tokenward)  # type: ignore[assignment]
    async with await client_for(app) as http:
        for scope, status in (("read write", 200), ("read", 403)):
            auth = {"authorization": f"Bearer {world.token(scope=scope)}"}
            assert (await http.get("/scope", headers=auth)).status_code == status
        assert (await http.get("/maybe")).json() == {"sub": None}
