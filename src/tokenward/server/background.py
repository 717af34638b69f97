"""Background work of one node: scheduled key rotation (no restart needed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from tokenward.rotation import apply_rotation
from tokenward.server.context import AppContext
from tokenward.server.keyring import rotation_policy, save_ring

__all__ = ["rotate_keys_once", "running"]

log = logging.getLogger("tokenward.server")
CHECK_EVERY = 60.0


async def rotate_keys_once(ctx: AppContext) -> list[str]:
    """One scheduled rotation step; persists and audits any change."""
    changes = apply_rotation(ctx.ring, ctx.clock(), rotation_policy(ctx.settings))
    if changes:
        save_ring(ctx.settings, ctx.ring)
        await ctx.audit.emit("keys.rotated", changes=changes)
    return changes


async def _loop(ctx: AppContext) -> None:
    while True:
        try:
            await rotate_keys_once(ctx)
        except Exception:  # keep serving with the current keys; the next tick retries
            log.exception("scheduled key rotation failed")
        await asyncio.sleep(CHECK_EVERY)


@contextlib.asynccontextmanager
async def running(ctx: AppContext) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(ctx), name="tokenward-rotation")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
