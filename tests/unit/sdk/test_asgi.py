"""The pure ASGI middleware (and the Starlette backend): the shared table, then what only
middleware has — anonymous pass-through, exclusions, websockets, lifespan."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokenward import KeyRing
from tokenward.sdk.asgi import ASGIApp, Message, Scope, TokenwardMiddleware, principal_of
from tokenward.sdk.guard import Guard
from tokenward.sdk.principal import requires_roles
from tokenward.sdk.starlette import PrincipalUser, TokenwardBackend

from .behaviour import CASES, IDS, INVALID, NO_CREDENTIALS, ROUTES, Case, World, check


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


class SyncClient:
    """A synchronous face on httpx's ASGITransport (starlette's TestClient is deprecated)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str, headers: Any = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as c:
                return await c.get(path, headers=headers)

        return anyio.run(go)


def run_websocket(app: ASGIApp, headers: dict[str, str], *, denial: bool) -> list[Message]:
    """One websocket handshake through ``app``; returns what the app sent."""
    sent: list[Message] = []
    incoming = iter([{"type": "websocket.connect"}, {"type": "websocket.disconnect"}])

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }
    anyio.run(app, scope, receive, send)
    return sent


async def endpoint(scope: Scope, receive: Any, send: Any) -> None:
    """Answers {"sub": ...} over http, or accepts a websocket and sends the subject."""
    who = principal_of(scope)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": who.subject if who else "anonymous"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = orjson.dumps({"sub": who.subject if who else None, "auth_in_scope": "auth" in scope})
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def table_app(world: World) -> Any:
    guard = Guard(world.verifier, principal_factory=world.factory)
    routes = {p: TokenwardMiddleware(endpoint, guard, requirement=n) for p, n in ROUTES.items()}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await routes[scope["path"]](scope, receive, send)

    return app


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_behaviour_table(world: World, case: Case) -> None:
    auth = case.authorization(world)
    r = SyncClient(table_app(world)).get(case.path, headers={"authorization": auth} if auth else {})
    body = r.json()
    body.pop("auth_in_scope", None)
    check(case, r.status_code, r.headers.get("www-authenticate"), body, r.headers["content-type"])


@pytest.fixture
def client(world: World) -> SyncClient:
    app = TokenwardMiddleware(endpoint, world.verifier, exclude=["/healthz", "/static/"])
    return SyncClient(app)


def test_anonymous_requests_pass_with_auth_none(client: SyncClient) -> None:
    assert client.get("/x").json() == {"sub": None, "auth_in_scope": True}
    basic = client.get("/x", headers={"authorization": "Basic YTpi"})
    assert basic.json() == {"sub": None, "auth_in_scope": True}  # not ours to judge


def test_a_refused_token_is_401_even_where_anonymous_is_allowed(
    client: SyncClient, world: World
) -> None:
    r = client.get("/x", headers={"authorization": f"Bearer {world.expired()}"})
    assert (r.status_code, r.headers["www-authenticate"]) == (401, INVALID)
    assert r.headers["content-length"] == str(len(r.content))
    ok = client.get("/x", headers={"authorization": f"Bearer {world.token()}"})
    assert ok.json()["sub"] == "alice"


def test_a_repeated_authorization_header_is_refused(client: SyncClient, world: World) -> None:
    token = world.token()
    r = client.get("/x", headers=[("authorization", f"Bearer {token}")] * 2)
    assert (r.status_code, r.headers["www-authenticate"]) == (401, INVALID)


@pytest.mark.parametrize(
    ("path", "excluded"),
    [("/healthz", True), ("/healthz/live", True), ("/healthzz", False), ("/static/a.css", True)],
)
def test_excluded_paths_are_left_alone(
    client: SyncClient, world: World, path: str, excluded: bool
) -> None:
    r = client.get(path, headers={"authorization": f"Bearer {world.expired()}"})
    assert r.status_code == (200 if excluded else 401)
    if excluded:
        assert r.json() == {"sub": None, "auth_in_scope": False}


def test_required_refuses_anonymous_and_a_requirement_implies_required(world: World) -> None:
    for app in (
        TokenwardMiddleware(endpoint, world.verifier, required=True),
        TokenwardMiddleware(endpoint, world.verifier, requirement=requires_roles("admin")),
    ):
        r = SyncClient(app).get("/x")
        assert (r.status_code, r.headers["www-authenticate"]) == (401, NO_CREDENTIALS)
    admin = TokenwardMiddleware(endpoint, world.verifier, requirement=requires_roles("admin"))
    token = world.token(claims={"roles": ["admin"]})
    assert SyncClient(admin).get("/x", headers={"authorization": f"Bearer {token}"}).is_success


def test_websocket_gets_the_principal_or_the_refusal(world: World) -> None:
    app = TokenwardMiddleware(endpoint, world.verifier, required=True)
    sent = run_websocket(app, {"authorization": f"Bearer {world.token()}"}, denial=True)
    assert [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "alice"
    start, body = run_websocket(app, {}, denial=True)
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401
    assert (b"www-authenticate", NO_CREDENTIALS.encode()) in start["headers"]
    assert orjson.loads(body["body"])["error"] == "invalid_token"


def test_websocket_without_the_denial_extension_is_closed_1008(world: World) -> None:
    app = TokenwardMiddleware(endpoint, world.verifier)
    sent = run_websocket(app, {"authorization": "Bearer x"}, denial=False)
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_lifespan_passes_through(world: World) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        pass

    anyio.run(
        TokenwardMiddleware(app, world.verifier, required=True),
        {"type": "lifespan"},
        nothing,
        ignore,
    )
    assert seen == [{"type": "lifespan"}]  # untouched: no "auth", no refusal


# -- Starlette AuthenticationBackend -------------------------------------------------------
@requires("write")
async def write(request: Request) -> JSONResponse:
    user = request.user
    assert isinstance(user, PrincipalUser)
    return JSONResponse({"sub": user.display_name, "scopes": sorted(request.auth.scopes)})


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"authenticated": request.user.is_authenticated})


@pytest.fixture
def starlette(world: World) -> SyncClient:
    backend = TokenwardBackend(world.verifier)
    middleware = [Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)]
    routes = [Route("/write", write), Route("/whoami", whoami)]
    return SyncClient(Starlette(routes=routes, middleware=middleware))


def test_starlette_backend(starlette: SyncClient, world: World) -> None:
    token = world.token(scope="read write")
    r = starlette.get("/write", headers={"authorization": f"Bearer {token}"})
    assert r.json() == {"sub": "alice", "scopes": ["read", "write"]}
    assert starlette.get("/whoami").json() == {"authenticated": False}
    read_only = world.token(scope="read")
    assert (
        starlette.get("/write", headers={"authorization": f"Bearer {read_only}"}).status_code == 403
    )


def test_starlette_backend_answers_a_refused_token_with_the_shared_401(
    starlette: SyncClient, world: World
) -> None:
    r = starlette.get("/whoami", headers={"authorization": f"Bearer {world.bad_signature()}"})
    assert (r.status_code, r.headers["www-authenticate"]) == (401, INVALID)
    assert r.json()["error"] == "invalid_token"
    other = TokenwardBackend.on_error(None, AuthenticationError("x"))  # type: ignore[arg-type]
    assert other.status_code == 400
