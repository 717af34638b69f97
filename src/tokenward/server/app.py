"""create_app(settings, store=..., clock=...): the ASGI application.

The context (store, keys, issuer, verifier, ...) is built in the lifespan, so one process
serves one app; tests enter ``app.router.lifespan_context(app)`` themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from tokenward import __version__
from tokenward.clock import Clock, system_clock
from tokenward.keys import KeyRing
from tokenward.server import background
from tokenward.server.context import build_context
from tokenward.server.errors import install_error_handlers
from tokenward.server.middleware import install_middleware
from tokenward.server.routes import ROUTERS
from tokenward.server.settings import Settings
from tokenward.store.base import Store

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
    ring: KeyRing | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, store=store, clock=clock, ring=ring)
        app.state.ctx = ctx
        async with background.running(ctx):
            try:
                yield
            finally:
                await ctx.store.close()

    app = FastAPI(
        title="tokenward", version=__version__, lifespan=lifespan,
        docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    install_middleware(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    return app
