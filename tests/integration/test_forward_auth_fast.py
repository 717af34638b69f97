"""Forward-auth around the endpoint: FastPath (ahead of the framework's inner layers),
header-rewriting middleware, and examples/traefik/dynamic.yml against the endpoint.

Helpers and the endpoint's own behaviour: test_forward_auth.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward import FrozenClock
from tokenward.server.app import create_app
from tokenward.server.context import AppContext
from tokenward.server.middleware import docs_paths, outer_middleware
from tokenward.server.routes.verify import FastPath
from tokenward.server.settings import Settings

from ..conftest import REPO
from .conftest import ISSUER
from .test_forward_auth import (
    AUTH_HEADERS,
    INVALID,
    NO_CREDENTIALS,
    VERIFY,
    assert_refused,
    bearer,
    count,
    mint,
    verify,
)

pytestmark = pytest.mark.anyio


# -- the Traefik example ---------------------------------------------------------------------
async def test_the_traefik_example_matches_the_endpoint(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    doc = yaml.safe_load((REPO / "examples" / "traefik" / "dynamic.yml").read_text())
    middlewares = doc["http"]["middlewares"]
    assert {m for r in doc["http"]["routers"].values() for m in r["middlewares"]} <= set(
        middlewares
    )
    token = mint(ctx, scope="admin")
    for spec in (m["forwardAuth"] for m in middlewares.values()):
        address = httpx.URL(spec["address"])
        assert address.path == VERIFY and spec["authRequestHeaders"] == ["Authorization"]
        assert {h.lower() for h in spec["authResponseHeaders"]} == set(AUTH_HEADERS)
        query = "?" + address.query.decode() if address.query else ""
        assert (await verify(client, token, query)).status_code == 200
        assert (await verify(client, mint(ctx), query)).status_code == (403 if query else 200)


async def test_responses_stay_the_same_behind_header_rewriting_middleware(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    """The shared refusals come out the same every time, also with CORS configured.

    The forward-auth check is for proxies, not browsers: FastPath answers it ahead of the
    CORS layer, so it carries no CORS headers (a page cannot read it cross-origin)."""
    app = create_app(make_settings(cors_origins=["https://app.example"]), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            origin = {"Origin": "https://app.example"}
            answers = [await http.get(VERIFY, headers=origin) for _ in range(3)]
    assert len({tuple(r.headers.multi_items()) for r in answers}) == 1
    assert "access-control-allow-origin" not in answers[0].headers
    assert answers[0].headers.get_list("www-authenticate") == [NO_CREDENTIALS]


# -- FastPath: the endpoint ahead of the inner layers ----------------------------------------
class Spy:
    """Counts the requests the fast path answers (the routed endpoint is another object)."""

    route_template = VERIFY

    def __init__(self, endpoint: Any) -> None:
        self.endpoint, self.calls = endpoint, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.endpoint(scope, receive, send)


@dataclass
class Fast:
    http: httpx.AsyncClient
    app: FastAPI
    spy: Spy

    @property
    def ctx(self) -> AppContext:
        context: AppContext = self.app.state.ctx
        return context


@pytest.fixture
async def fast(settings: Settings, clock: FrozenClock) -> AsyncIterator[Fast]:
    """The app with FastPath where TokenwardAPI.build_middleware_stack would put it."""
    app = create_app(settings, clock=clock)
    inner = FastPath(FastAPI.build_middleware_stack(app))
    spy = inner.endpoint = Spy(inner.endpoint)  # type: ignore[assignment]
    stack = outer_middleware(inner, settings, docs_paths(app))
    app.build_middleware_stack = lambda: stack  # type: ignore[method-assign]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Fast(http, app, spy)


async def test_the_fast_path_answers_like_the_route(fast: Fast) -> None:
    token = mint(fast.ctx, scope="read", claims={"roles": ["a,b"]})
    ok = await verify(fast.http, token, "?scope=read")
    assert ok.status_code == 200 and ok.content == b""
    assert ok.headers["x-auth-subject"] == "svc-7" and ok.headers["x-auth-roles"] == "a%2Cb"
    assert ok.headers["x-content-type-options"] == "nosniff"  # the outer layers still apply
    assert_refused(await verify(fast.http, None), NO_CREDENTIALS)
    assert_refused(await verify(fast.http, "nope"), INVALID)
    assert (await verify(fast.http, token, "?scope=write")).status_code == 403
    assert (await verify(fast.http, token, "?scope=%22")).status_code == 400
    head = await verify(fast.http, token, method="HEAD")
    assert head.status_code == 200 and head.content == b""
    post = await verify(fast.http, token, method="POST")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert (await fast.http.get("/healthz")).status_code == 200  # everything else is routed
    assert fast.spy.calls == 7 and count(fast.ctx, "ok") == 2
    timed = {"route": VERIFY}  # one latency label for the endpoint, never the raw path
    assert fast.ctx.metrics.registry.get_sample_value("tokenward_request_seconds_count", timed) == 7
    mounted = httpx.ASGITransport(app=fast.app, root_path="/auth")  # behind a path prefix
    async with httpx.AsyncClient(transport=mounted, base_url=ISSUER) as http:
        assert (await http.get("/auth" + VERIFY, headers=bearer(token))).status_code == 200
    assert fast.spy.calls == 8
