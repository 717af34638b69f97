"""Flask: the extension against the shared table, current_principal, async views, init_app."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tokenward import KeyRing
from tokenward.sdk.flask import Tokenward, current_principal

from .behaviour import CASES, IDS, INVALID, ROUTES, Case, World, check


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


def make_app(tokenward: Tokenward) -> Flask:
    app = Flask(__name__)
    tokenward.init_app(app)
    for path, need in ROUTES.items():
        guard = tokenward.require(
            scopes=need.scopes, roles=need.roles, permissions=need.permissions
        )

        def handler() -> dict[str, Any]:
            assert current_principal is not None
            return {"sub": current_principal.subject}

        app.add_url_rule(path, path, guard(handler))

    @app.get("/maybe")
    @tokenward.optional
    def maybe() -> dict[str, Any]:
        return {"sub": current_principal.subject if current_principal else None}

    @app.get("/async")
    @tokenward.require()
    async def asynchronous() -> dict[str, Any]:
        assert current_principal is not None
        return {"sub": current_principal.subject}

    @app.get("/open")
    def open_view() -> dict[str, Any]:
        return {"principal": repr(current_principal)}

    return app


@pytest.fixture
def app(world: World) -> Flask:
    return make_app(Tokenward(verifier=world.verifier, principal_factory=world.factory))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_behaviour_table(app: Flask, world: World, case: Case) -> None:
    auth = case.authorization(world)
    r = app.test_client().get(case.path, headers={"authorization": auth} if auth else {})
    check(case, r.status_code, r.headers.get("www-authenticate"), r.get_json(), r.content_type)


def test_current_principal_is_none_outside_protected_views(app: Flask, world: World) -> None:
    client = app.test_client()
    headers = {"authorization": f"Bearer {world.token()}"}
    assert client.get("/open", headers=headers).get_json() == {"principal": "None"}
    assert client.get("/maybe").get_json() == {"sub": None}
    assert client.get("/maybe", headers=headers).get_json() == {"sub": "alice"}
    bad = client.get("/maybe", headers={"authorization": f"Bearer {world.expired()}"})
    assert (bad.status_code, bad.headers["www-authenticate"]) == (401, INVALID)


def test_async_views_are_protected_too(app: Flask, world: World) -> None:
    client = app.test_client()
    assert client.get("/async").status_code == 401
    ok = client.get("/async", headers={"authorization": f"Bearer {world.token()}"})
    assert ok.get_json() == {"sub": "alice"}


def test_one_extension_many_apps_each_with_its_own_verifier(world: World, make_ring: Any) -> None:
    other = World(make_ring("EdDSA"))
    tokenward = Tokenward()
    first, second = Flask("first"), Flask("second")
    tokenward.init_app(first, verifier=world.verifier)
    tokenward.init_app(second, verifier=other.verifier)
    view = tokenward.require()(lambda: {"sub": current_principal.subject})  # type: ignore[union-attr]
    for app in (first, second):
        app.add_url_rule("/any", "any", view)
    headers = {"authorization": f"Bearer {world.token()}"}
    assert first.test_client().get("/any", headers=headers).status_code == 200
    assert second.test_client().get("/any", headers=headers).status_code == 401


def test_configuration_mistakes_are_clear(world: World) -> None:
    with pytest.raises(TypeError, match="verifier"):
        Tokenward(Flask("x"))
    app = Flask("uninitialised")
    app.testing = True  # exceptions propagate to the test
    app.add_url_rule("/any", "any", Tokenward().require()(lambda: "never"))
    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/any")
