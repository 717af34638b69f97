"""One router per concern; app.py includes them in this order."""

from __future__ import annotations

from fastapi import APIRouter

from tokenward.server.routes import (
    admin,
    auth,
    health,
    oauth,
    revocations,
    sessions,
    verify,
    wellknown,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    verify.router,  # first: a proxy asks it on every request; routes match in order
    auth.router,
    sessions.router,
    admin.router,
    oauth.router,
    revocations.router,
    wellknown.router,
    health.router,
)
