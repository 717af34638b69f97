"""The examples/ apps, driven with real tokens: FastAPI (httpx ASGITransport), Flask (test
client), Django + DRF (test client).

Fast tests inject an in-process issuer's verifier into each example; the slow one starts a
real ``tokenward serve``, logs in as admin and calls every example with that token, each
example configured only with the server's URL (RFC 8414 discovery, then its JWKS).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import django
import httpx
import orjson
import pytest
from django.conf import settings

from tokenward import FrozenClock, Issuer, KeyRing, Verifier
from tokenward.sdk.guard import TokenVerifier

from ..conftest import REPO, T0
from .test_serve import ServerProcess, admin_passwords, free_port, login, server_env

if not settings.configured:  # the same base as tests/unit/sdk/test_django.py
    settings.configure(
        SECRET_KEY="tokenward-tests-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        USE_TZ=True,
    )
    django.setup()

from django.test import Client, override_settings

EXAMPLES = REPO / "examples"
ISS, AUD = "https://auth.example", "https://api.example"

# One response per example: (status, body or None, WWW-Authenticate or None).
Outcome = tuple[int, Any, str | None]
Caller = Callable[[str, str, str | None], Outcome]  # (method, path, token) -> Outcome


def load(name: str, path: Path) -> ModuleType:
    """Import an example file under a unique module name (two of them are app.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _json(content: bytes) -> Any:
    return orjson.loads(content) if content else None


def fastapi_caller(verifier: TokenVerifier | None) -> Caller:
    app = load("tokenward_example_fastapi", EXAMPLES / "fastapi_app" / "app.py").create_app(
        verifier
    )

    def call(method: str, path: str, token: str | None) -> Outcome:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://example") as c:
                return await c.request(method, path, headers=bearer(token))

        r = anyio.run(go)
        return r.status_code, _json(r.content), r.headers.get("www-authenticate")

    return call


def flask_caller(verifier: TokenVerifier | None) -> Caller:
    app = load("tokenward_example_flask", EXAMPLES / "flask_app" / "app.py").create_app(verifier)
    client = app.test_client()

    def call(method: str, path: str, token: str | None) -> Outcome:
        r = client.open(path, method=method, headers=bearer(token))
        return r.status_code, _json(r.data), r.headers.get("www-authenticate")

    return call


@contextmanager
def django_example(tokenward: dict[str, Any] | None) -> Iterator[Caller]:
    """The example project's settings, with TOKENWARD replaced when given."""
    sys.path.insert(0, str(EXAMPLES / "django_project"))
    try:
        conf = importlib.import_module("exampleproject.settings")
        overrides = {
            "ROOT_URLCONF": conf.ROOT_URLCONF,
            "MIDDLEWARE": conf.MIDDLEWARE,
            "REST_FRAMEWORK": conf.REST_FRAMEWORK,
            "TOKENWARD": {**conf.TOKENWARD, **(tokenward or {})},
        }
        with override_settings(**overrides):
            client = Client()

            def call(method: str, path: str, token: str | None) -> Outcome:
                r = client.generic(method, path, headers=bearer(token))
                return r.status_code, _json(r.content), r.headers.get("www-authenticate")

            yield call
    finally:
        sys.path.remove(str(EXAMPLES / "django_project"))


@contextmanager
def each_example(
    verifier: TokenVerifier | None, django_conf: dict[str, Any] | None
) -> Iterator[dict[str, Caller]]:
    with django_example(django_conf) as django_call:
        yield {
            "fastapi": fastapi_caller(verifier),
            "flask": flask_caller(verifier),
            "django": django_call,
        }


# The write route of each example (Django's DRF write view is its own path).
WRITE_PATH = {"fastapi": "/items", "flask": "/items", "django": "/items/new"}
NO_CREDENTIALS = 'Bearer realm="tokenward"'
INVALID = 'Bearer realm="tokenward", error="invalid_token"'


@pytest.fixture
def issuer(ring: KeyRing) -> Issuer:
    return Issuer(ring, issuer=ISS, clock=FrozenClock(T0 + 10))


@pytest.fixture
def verifier(ring: KeyRing) -> Verifier:
    return Verifier(ring, issuer=ISS, audience=AUD, clock=FrozenClock(T0 + 20))


def test_examples_with_an_in_process_issuer(issuer: Issuer, verifier: Verifier) -> None:
    reader = issuer.issue("alice", AUD, scope="items:read", claims={"roles": ["user"]})
    admin = issuer.issue("root", AUD, claims={"roles": ["admin"]})
    writer = issuer.issue("bob", AUD, claims={"perm": 3})  # bits read + write
    with each_example(verifier, {"VERIFIER": verifier}) as examples:
        for name, call in examples.items():
            assert call("GET", "/health", None)[0] == 200, name
            status, body, challenge = call("GET", "/me", None)
            assert (status, body["error"], challenge) == (401, "invalid_token", NO_CREDENTIALS), (
                name
            )
            status, body, _ = call("GET", "/me", reader)
            assert (status, body) == (
                200,
                {"sub": "alice", "roles": ["user"], "scopes": ["items:read"]},
            ), name
            assert call("GET", "/items", reader)[:2] == (200, ["apple", "pear"]), name
            assert call("GET", "/admin", reader)[0] == 403, name
            assert call("GET", "/admin", admin)[:2] == (200, {"admin": "root"}), name
            status, _, challenge = call("GET", "/items", admin)
            assert (status, challenge) == (
                403,
                'Bearer realm="tokenward", error="insufficient_scope", scope="items:read"',
            ), name
            assert call("POST", WRITE_PATH[name], writer)[:2] == (201, {"created_by": "bob"}), name
            assert call("POST", WRITE_PATH[name], reader)[0] == 403, name
            forged = reader[:-4] + ("AAAA" if not reader.endswith("AAAA") else "BBBB")
            assert call("GET", "/me", forged)[2] == INVALID, name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    tmp = tmp_path_factory.mktemp("examples-server")
    with ServerProcess(tmp / "data", free_port(), server_env(tmp)) as proc:
        proc.wait_ready()
        (password,) = admin_passwords(proc)
        yield proc, password
        proc.stop_gracefully()


@pytest.mark.slow  # a real `tokenward serve` process
def test_examples_with_a_running_server(
    server: tuple[ServerProcess, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, password = server
    token = login(proc.base, "admin", password)["access_token"]
    monkeypatch.setenv("TOKENWARD_ISSUER", proc.base)  # the examples' only configuration
    monkeypatch.delenv("TOKENWARD_AUDIENCE", raising=False)
    me = httpx.get(proc.base + "/api/v1/me", headers=bearer(token)).json()
    with each_example(None, {"ISSUER": proc.base, "AUDIENCE": proc.base}) as examples:
        for name, call in examples.items():
            assert call("GET", "/me", token) == (
                200,
                {"sub": me["id"], "roles": ["admin"], "scopes": []},
                None,
            ), name
            assert call("GET", "/admin", token)[:2] == (200, {"admin": me["id"]}), name
            # A first-party login token carries roles, not scopes (server LOGIN_SCOPE).
            assert call("GET", "/items", token)[0] == 403, name
            assert call("GET", "/me", None)[2] == NO_CREDENTIALS, name
