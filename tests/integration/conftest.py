"""Server fixtures: an app on a real SQLite file in tmp_path, a frozen clock, an httpx client.

The lifespan is entered explicitly (httpx's ASGITransport does not run it). Argon2 runs
with small parameters here so the suite stays fast; production defaults are tested in
tests/unit/server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward import FrozenClock
from tokenward.server.app import create_app
from tokenward.server.context import AppContext
from tokenward.server.settings import Settings

from ..conftest import T0

ISSUER = "https://auth.example"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**over: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite:///{tmp_path / 'tokenward.db'}",
            "issuer": ISSUER,
            "argon2_memory_kib": 8192,
            "argon2_time_cost": 1,
            "login_rate_per_ip": "1000/minute",
            "login_rate_per_account": "1000/minute",
            "token_rate_per_ip": "1000/minute",
            "token_rate_per_account": "1000/minute",
        }
        base.update(over)
        return Settings(**base)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An ASGI http scope as a server hands it over, for tests that call the app raw."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("203.0.113.7", 1),
        "server": ("auth.example", 443),
        "headers": [(b"host", b"auth.example"), *headers],
    }
