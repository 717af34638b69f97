"""GET /api/v1/revocations: the revocation feed for resource servers (docs/scale-out.md).

``?since=CURSOR`` returns the events after the cursor, oldest first, as
``{"events": [{"id", "at", "kind", "data"}], "cursor": N, "more": bool}``; the client
applies them and asks again with ``since=cursor`` (at once while ``more``). With
``&wait=SECONDS`` (at most 30) an empty answer is held until an event arrives or the time
is up (a long poll): revocations reach verifiers within a round trip, without Redis.
``Accept: text/event-stream`` streams the same events as Server-Sent Events (``id`` is
the cursor, so a reconnecting EventSource resumes with ``Last-Event-ID``).

Who may read it: the events name token ids and subject ids, so by default only a client
authenticated with the client credentials grant (RFC 6749 §4.4: ``sub`` is its own
``client_id``, RFC 9068 §2.2) holding the scope ``revocations:read``; with the setting
``revocation_feed_public`` anyone may (a private network, a proxy in front).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tokenward.errors import AccessDenied
from tokenward.server.context import AppContext
from tokenward.server.deps import Ctx, get_ctx, principal
from tokenward.store.base import RevocationEvent

__all__ = ["FEED_SCOPE", "MAX_WAIT", "router"]

router = APIRouter(prefix="/api/v1", tags=["revocations"])

FEED_SCOPE = "revocations:read"
MAX_WAIT = 30.0  # seconds a long poll may be held (below common proxy read timeouts)
SSE_HEARTBEAT = 15.0  # seconds between keep-alive comments on an idle stream
NO_STORE = {"Cache-Control": "no-store"}


async def feed_reader(request: Request) -> float:
    """Authorise a reader; returns when its access ends (the token's ``exp``, or never)."""
    ctx = get_ctx(request)
    if ctx.settings.revocation_feed_public:
        return float("inf")
    who = principal(request)
    if FEED_SCOPE not in who.scopes or who.claims.get("client_id") != who.subject:
        raise AccessDenied(f"requires a client credentials token with scope {FEED_SCOPE}")
    return float(who.claims["exp"])


Reader = Annotated[float, Depends(feed_reader)]


def event_view(event: RevocationEvent) -> dict[str, Any]:
    return {"id": event.id, "at": event.at, "kind": event.kind, "data": event.data}


async def _page(ctx: AppContext, since: int, limit: int, wait: float) -> dict[str, Any]:
    events = await ctx.store.revocation_events(since, limit)
    if not events and wait > 0:
        await ctx.events.wait_past(since, min(wait, MAX_WAIT))
        events = await ctx.store.revocation_events(since, limit)
    # a cursor beyond the newest event (a restored database) comes back to the newest
    cursor = events[-1].id if events else min(since, await ctx.store.revocation_cursor())
    return {
        "events": [event_view(e) for e in events],
        "cursor": cursor,
        "more": len(events) == limit,
    }


@router.get("/revocations", response_model=None)
async def revocations(
    request: Request,
    ctx: Ctx,
    until: Reader,
    *,
    since: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    if "text/event-stream" in request.headers.get("accept", ""):
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isdigit() and len(last) < 19 else since
        return StreamingResponse(
            _stream(ctx, start, until),
            media_type="text/event-stream",
            headers={**NO_STORE, "X-Accel-Buffering": "no"},  # nginx: do not buffer it
        )
    return JSONResponse(await _page(ctx, since, limit, wait), headers=NO_STORE)


def _sse(event: RevocationEvent) -> str:
    data = json.dumps(event_view(event), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


async def _stream(ctx: AppContext, cursor: int, until: float) -> AsyncIterator[str]:
    """Events as they come; ends when the reader's token expires (it reconnects with a
    fresh one and ``Last-Event-ID``: nothing is missed)."""
    yield "retry: 2000\n\n"
    while ctx.clock() < until:
        events = await ctx.store.revocation_events(cursor, 500)
        for event in events:
            yield _sse(event)
        if events:
            cursor = events[-1].id
            continue
        await ctx.events.wait_past(cursor, SSE_HEARTBEAT)
        if ctx.events.head <= cursor:
            yield ": keep-alive\n\n"
