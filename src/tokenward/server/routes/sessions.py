"""The caller's sessions (refresh families, SECURITY.md refresh rule 4): list and revoke."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from tokenward.errors import NotFound
from tokenward.server.deps import Caller, Ctx, request_info
from tokenward.server.services.sessions import Sessions
from tokenward.store.base import Family

__all__ = ["device_name", "router"]

router = APIRouter(prefix="/api/v1", tags=["sessions"])


# First match wins: order matters (Edge and Opera also say "Chrome", Chrome says "Safari",
# Android says "Linux", iOS says "like Mac OS X").
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bEdg(e|A|iOS)?/", "Edge"),
        (r"\b(OPR|Opera)/", "Opera"),
        (r"\b(Firefox|FxiOS)/", "Firefox"),
        (r"\b(Chrome|CriOS|Chromium)/", "Chrome"),
        (r"\bVersion/[\d.]+.*\bSafari/", "Safari"),
        (r"^curl/", "curl"),
        (r"^python-httpx/", "httpx"),
        (r"^python-requests/", "Python requests"),
        (r"^tokenward/", "tokenward CLI"),
    )
)
_SYSTEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bAndroid\b", "Android"),
        (r"\b(iPhone|iPad|iPod)\b", "iOS"),
        (r"\bWindows\b", "Windows"),
        (r"\bCrOS\b", "ChromeOS"),
        (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
        (r"\bLinux\b", "Linux"),
    )
)


def _first(table: tuple[tuple[re.Pattern[str], str], ...], user_agent: str) -> str | None:
    return next((name for pattern, name in table if pattern.search(user_agent)), None)


def device_name(user_agent: str) -> str:
    """A short readable device name from a User-Agent, e.g. "Firefox on Linux"."""
    browser, system = _first(_BROWSERS, user_agent), _first(_SYSTEMS, user_agent)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


class SessionOut(BaseModel):
    id: str
    device: str
    ip: str
    created: float
    last_used: float
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionOut]


def _out(family: Family, current: str | None) -> SessionOut:
    return SessionOut(
        id=family.id,
        device=device_name(family.user_agent),
        ip=family.ip,
        created=family.created_at,
        last_used=family.last_used_at,
        current=family.id == current,
    )


@router.get("/sessions", response_model=SessionList)
async def list_sessions(response: Response, ctx: Ctx, who: Caller) -> SessionList:
    """The caller's live sessions, newest use first."""
    families = await Sessions(ctx).list(who.subject)
    ordered = sorted(families, key=lambda f: f.last_used_at, reverse=True)
    response.headers["Cache-Control"] = "no-store"
    return SessionList(sessions=[_out(f, who.session_id) for f in ordered])


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(
    request: Request,
    ctx: Ctx,
    who: Caller,
    session_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
) -> Response:
    """End one of the caller's sessions; anybody else's is "not found" (no probing)."""
    family = await ctx.store.get_family(session_id)
    if family is None or family.user_id != who.subject or family.revoked_at is not None:
        raise NotFound("no such session")
    await Sessions(ctx).end(family.id, reason="revoked", request=request_info(request))
    return Response(status_code=204)
