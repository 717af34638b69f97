"""Health and metrics: liveness, readiness (the store answers), Prometheus exposition.

/healthz says the process serves requests (a restart is the cure when it does not);
/readyz says this node can do useful work (a load balancer takes it out of rotation on
503 meanwhile). /metrics is the Prometheus text format 0.0.4; it carries counters only,
no user data, and is meant for an internal scrape: restrict it at the proxy, or set
``metrics_token`` and give the scraper that Bearer token (Prometheus ``authorization``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import SecretStr
from starlette.exceptions import HTTPException

from tokenward.errors import InvalidToken
from tokenward.server.deps import get_ctx

__all__ = ["PING_TIMEOUT", "PROMETHEUS_TEXT", "router"]

log = logging.getLogger("tokenward.server")
router = APIRouter(tags=["health"])

PING_TIMEOUT = 2.0  # seconds; a load balancer's probe usually gives up after a few
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
NO_CACHE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process is up and its event loop answers."""
    return Response(b'{"status":"ok"}', media_type="application/json", headers=NO_CACHE)


async def _store_ok(request: Request) -> bool:
    try:
        return bool(await asyncio.wait_for(get_ctx(request).store.ping(), PING_TIMEOUT))
    except Exception as exc:  # any failure of the store means "not ready", never a 500
        log.warning("readiness: store ping failed: %s", type(exc).__name__)
        return False


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Readiness: the store is reachable; 503 problem+json otherwise."""
    if not await _store_ok(request):
        raise HTTPException(503, "the store is unreachable", headers={"Retry-After": "5"})
    return Response(b'{"status":"ready"}', media_type="application/json", headers=NO_CACHE)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this node's counters and latency histograms."""
    ctx = get_ctx(request)
    _check_scraper(request, ctx.settings.metrics_token)
    body = ctx.metrics.render()
    return Response(body, media_type=PROMETHEUS_TEXT, headers=NO_CACHE)


def _check_scraper(request: Request, token: SecretStr | None) -> None:
    """RFC 6750 §2.1 Bearer, compared in constant time; no token configured: open."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise InvalidToken("the metrics token is required", code="missing_token")
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise InvalidToken("the metrics token is wrong")
