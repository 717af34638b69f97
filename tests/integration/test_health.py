"""/healthz (alive), /readyz (the store answers), /metrics (Prometheus text format 0.0.4)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.server.app import create_app
from tokenward.server.context import AppContext
from tokenward.server.routes import health
from tokenward.server.services.accounts import Accounts
from tokenward.server.settings import Settings

from .conftest import ISSUER, PASSWORD

pytestmark = pytest.mark.anyio


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name + (f"{{{want}}}" if labels else "")) + r" (\S+)$"
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_healthz_says_the_process_is_alive(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"


async def test_readyz_is_ready_when_the_store_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


async def _ping_fails() -> bool:
    raise ConnectionRefusedError("database is down")


async def _ping_false() -> bool:
    return False


async def _ping_hangs() -> bool:
    await asyncio.Event().wait()  # never answers; the probe's timeout must end it
    return True


@pytest.mark.parametrize("ping", [_ping_fails, _ping_false, _ping_hangs])
async def test_readyz_is_503_problem_when_the_store_is_unreachable(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, ping: object
) -> None:
    monkeypatch.setattr(ctx.store, "ping", ping)
    monkeypatch.setattr(health, "PING_TIMEOUT", 0.05)
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    body = r.json()
    assert body["status"] == 503 and body["error"] == "temporarily_unavailable"
    assert "database is down" not in r.text  # the cause is logged, not shown
    assert (await client.get("/healthz")).status_code == 200  # alive all the same


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE tokenward_logins_total counter" in r.text
    assert "# TYPE tokenward_request_seconds histogram" in r.text


async def test_metrics_count_logins_after_a_login(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await Accounts(ctx).create("alice", PASSWORD)
    before = (await client.get("/metrics")).text
    assert sample(before, "tokenward_logins_total", result="succeeded") is None
    ok = await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200
    bad = await client.post("/api/v1/login", json={"username": "alice", "password": "wrong!!!"})
    assert bad.status_code == 401
    text = (await client.get("/metrics")).text
    assert sample(text, "tokenward_logins_total", result="succeeded") == 1.0
    assert sample(text, "tokenward_logins_total", result="failed") == 1.0
    assert sample(text, "tokenward_request_seconds_count", route="/api/v1/login") == 2.0


async def test_latency_is_labelled_by_route_template_never_by_raw_path(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/admin/users/u-123/disable")  # 401, but routed
    await client.get("/.well-known/jwks.json")  # a plain ASGI endpoint
    await client.get("/no/such/path/9f8e7d")
    text = (await client.get("/metrics")).text
    template = "/api/v1/admin/users/{user_id}/disable"
    assert sample(text, "tokenward_request_seconds_count", route=template) == 1.0
    assert sample(text, "tokenward_request_seconds_count", route="/.well-known/jwks.json") == 1.0
    assert sample(text, "tokenward_request_seconds_count", route="<unmatched>") == 1.0
    assert "u-123" not in text and "9f8e7d" not in text


async def test_metrics_token_is_required_when_set(
    make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    app = create_app(make_settings(metrics_token="scrape-me-0123456789"), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            missing = await client.get("/metrics")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert "error=" not in missing.headers["www-authenticate"]  # RFC 6750 §3.1
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-x"})
            assert wrong.status_code == 401
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
            assert "scrape-me" not in wrong.text
            ok = await client.get(
                "/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}
            )
            assert ok.status_code == 200 and "tokenward_" in ok.text
            assert (await client.get("/healthz")).status_code == 200  # probes stay open
