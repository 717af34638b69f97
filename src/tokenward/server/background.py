"""Background work of one node: key rotation on schedule, the revocation feed, upkeep.

- every CHECK_EVERY seconds: one rotation step on the shared ring (compare-and-set, so
  nodes ticking together rotate once), a reload of the ring if another node changed it,
  and the purge of expired deny-list entries and of revocation events too old to matter;
- all the time: following the other nodes' revocation events (server/events.py).

A failure of one step is logged and retried on the next tick; the node keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from tokenward.rotation import apply_rotation
from tokenward.server.context import AppContext
from tokenward.server.keyring import rotation_policy

__all__ = ["maintain_once", "rotate_keys_once", "running"]

log = logging.getLogger("tokenward.server")
CHECK_EVERY = 60.0


async def rotate_keys_once(ctx: AppContext) -> list[str]:
    """One scheduled rotation step; persists, announces and audits any change."""
    now, policy = ctx.clock(), rotation_policy(ctx.settings)
    changes = await ctx.keys.update(lambda ring: apply_rotation(ring, now, policy))
    if changes:
        await ctx.audit.emit("keys.rotated", changes=changes)
    return changes


def event_retention(ctx: AppContext) -> float:
    """Events older than this can no longer revoke a live token (every token they could
    touch has expired): at least twice the longest access-token lifetime."""
    return max(ctx.settings.revocation_event_retention, 2 * ctx.settings.access_ttl)


async def maintain_once(ctx: AppContext) -> dict[str, int]:
    """Keep memory and tables bounded: expired denials go, old events go."""
    now = ctx.clock()
    return {
        "denied": await ctx.store.purge_denied(now),
        "events": await ctx.store.purge_revocation_events(now - event_retention(ctx)),
        "view": ctx.revocation.purge(now),
    }


async def _tick(ctx: AppContext) -> None:
    steps: tuple[tuple[str, Callable[[AppContext], Awaitable[object]]], ...] = (
        ("reloading the key ring", lambda c: c.keys.reload()),
        ("scheduled key rotation", rotate_keys_once),
        ("purging expired revocations", maintain_once),
    )
    for what, step in steps:
        try:
            await step(ctx)
        except Exception:  # keep serving; the next tick retries
            log.exception("%s failed", what)


async def _loop(ctx: AppContext) -> None:
    while True:
        await asyncio.sleep(CHECK_EVERY)
        await _tick(ctx)


@contextlib.asynccontextmanager
async def running(ctx: AppContext) -> AsyncIterator[None]:
    await _tick(ctx)  # before serving: a rotation due while the node was down happens now
    tasks = [
        asyncio.create_task(_loop(ctx), name="tokenward-upkeep"),
        asyncio.create_task(ctx.events.follow(), name="tokenward-events"),
    ]
    try:
        yield
    finally:
        await ctx.events.stop()  # first: between two store reads
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ctx.events.close()
