"""One router per concern; app.py includes them in this order."""

from __future__ import annotations

from fastapi import APIRouter

from tokenward.server.routes import admin, auth, health, oauth, sessions, wellknown

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    sessions.router,
    admin.router,
    oauth.router,
    wellknown.router,
    health.router,
)
