"""create_app(settings, store=..., clock=...): the ASGI application.

The context (store, keys, issuer, verifier, ...) is built in the lifespan, so one process
serves one app; tests enter ``app.router.lifespan_context(app)`` themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from tokenward import __version__
from tokenward.clock import Clock, system_clock
from tokenward.keys import KeyRing
from tokenward.server import background
from tokenward.server.bootstrap import bootstrap
from tokenward.server.context import build_context
from tokenward.server.errors import install_error_handlers
from tokenward.server.middleware import docs_paths, install_middleware, outer_middleware
from tokenward.server.routes import ROUTERS
from tokenward.server.routes.login import LoginPath
from tokenward.server.routes.refresh import RefreshPath
from tokenward.server.routes.verify import FastPath
from tokenward.server.settings import Settings
from tokenward.store.base import Store

__all__ = ["TokenwardAPI", "create_app"]


class TokenwardAPI(FastAPI):
    """FastAPI with outer layers around Starlette's whole stack.

    Starlette answers an unhandled exception (500) in ServerErrorMiddleware, outside every
    ``add_middleware`` layer; the security headers and latency metric wrap it as well.
    """

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokenward_settings = settings

    def build_middleware_stack(self) -> ASGIApp:
        # FastPath answers the forward-auth check (asked by a proxy on every request),
        # RefreshPath the plain refresh (every client, once per access token) and LoginPath
        # the plain login ahead of routing and the inner layers, inside the headers and
        # latency metric.
        stack = FastPath(RefreshPath(LoginPath(super().build_middleware_stack())))
        return outer_middleware(stack, self.tokenward_settings, docs_paths(self))


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
    ring: KeyRing | None = None,
    bootstrap_admin: bool = False,
) -> FastAPI:
    """The app; with ``bootstrap_admin`` a configured ``admin_password`` creates the first
    admin at start-up (the ASGI entry; ``tokenward serve`` bootstraps before it starts)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, store=store, clock=clock, ring=ring)
        app.state.ctx = ctx
        if bootstrap_admin and settings.admin_password is not None:
            await bootstrap(ctx)
        async with background.running(ctx):
            try:
                yield
            finally:
                await ctx.store.close()

    app = TokenwardAPI(
        settings,
        title="tokenward",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # No 307 to the slash-less path: its Location is built from the Host header and
        # the scheme uvicorn saw (http behind a TLS proxy); an unknown path is a 404.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    install_middleware(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    return app
