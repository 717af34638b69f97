"""Revocation events between nodes: publish durably, push over Redis, follow the others.

A revocation is written to the store as state (deny-list, token version, epoch) and as an
event with a cursor (its id). The event is then published on the Redis channel
``{redis_prefix}:revocations`` so the other nodes (and SDK feeds) hear of it at once.

Each node follows the others (:meth:`NodeEvents.follow`, a background task): it applies
pushed events to its RevocationView (skipping its own, by node id), and reads the store's
event table from its cursor — every few seconds while Redis is absent or down, after every
(re)subscription, when a pushed id shows a gap, and every so often anyway (a publish can
fail while the subscriptions are fine). Events are idempotent and order-free (maxima and
set unions), so reading one twice is harmless; missing none is what the cursor is for.

Redis is never needed for correctness: when it is down, publishing logs and backs off,
subscribing retries with backoff, and the store's table carries everything meanwhile.
Logins, refreshes and verification never wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tokenward.clock import Clock
from tokenward.revocation import RevocationView
from tokenward.store.base import Store

__all__ = ["NodeEvents", "channel_name"]

log = logging.getLogger("tokenward.server.events")

PAGE = 500  # events read from the store per query
RECONCILE_EVERY = 10.0  # seconds between store reads while subscribed
BACKOFF_MIN, BACKOFF_MAX = 0.2, 30.0
REDIS_TIMEOUT = 2.0  # seconds; a publish never holds a revocation longer than this
PUBLISH_PAUSE = 5.0  # seconds without publishing after a failure (the others poll)

Reload = Callable[[], Awaitable[bool]]


def channel_name(prefix: str) -> str:
    return f"{prefix}:revocations"


class NodeEvents:
    """This node's side of the revocation feed."""

    def __init__(
        self,
        store: Store,
        view: RevocationView,
        clock: Clock,
        *,
        redis_url: str = "",
        channel: str = "tokenward:revocations",
        poll_every: float = 2.0,
    ) -> None:
        self.store, self.view, self.clock = store, view, clock
        self.redis_url, self.channel, self.poll_every = redis_url, channel, poll_every
        self.node_id = secrets.token_hex(8)
        self.cursor = 0  # every event up to here is applied to the view
        self.head = 0  # the newest id this node knows of (long-pollers wait on it)
        self.subscribed = False
        self.reload_keys: Reload | None = None  # set by the context: SharedRing.reload
        self._changed = asyncio.Event()
        self._catching_up = asyncio.Lock()
        self._publisher: Any = None
        self._publish_down_until = 0.0
        self._backoff = BACKOFF_MIN
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return (
            f"NodeEvents(node={self.node_id}, cursor={self.cursor}, subscribed={self.subscribed})"
        )

    async def start(self) -> None:
        """Start from the store's newest event (call before loading the persisted state)."""
        self.cursor = self.head = await self.store.revocation_cursor()

    # -- publishing ------------------------------------------------------------------------
    async def publish(self, kind: str, data: dict[str, Any]) -> int:
        """Record the event durably (its id is the cursor), then push it. The caller has
        already applied it to this node's view."""
        at = self.clock()
        event_id = await self.store.add_revocation_event(kind, data, at)
        self._advance(event_id)
        if self.redis_url:
            message = {"id": event_id, "at": at, "kind": kind, "data": data, "node": self.node_id}
            await self._push(json.dumps(message, separators=(",", ":")))
        return event_id

    async def _push(self, message: str) -> None:
        if time.monotonic() < self._publish_down_until:
            return  # Redis was down a moment ago; the others read the store meanwhile
        try:
            if self._publisher is None:
                self._publisher = _redis_client(self.redis_url, timeout=REDIS_TIMEOUT)
            await self._publisher.publish(self.channel, message)
        except Exception as exc:  # any Redis failure: log, never fail the revocation
            self._publish_down_until = time.monotonic() + PUBLISH_PAUSE
            log.warning("revocation event not pushed (Redis: %s); nodes poll the store", _name(exc))

    # -- following the other nodes ---------------------------------------------------------
    async def follow(self) -> None:
        """Run until :meth:`stop`: the Redis subscription (if configured) and the store poll."""
        self._tasks = [asyncio.create_task(self._poll_loop(), name="tokenward-events-poll")]
        if self.redis_url:
            self._tasks.append(
                asyncio.create_task(self._listen_loop(), name="tokenward-events-redis")
            )
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop following. The tasks are cancelled between store reads, never during one
        (a read cancelled mid-way would leave the database driver's thread behind)."""
        tasks, self._tasks = self._tasks, []
        async with self._catching_up:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def catch_up(self) -> int:
        """Apply every stored event after the cursor; returns how many."""
        applied = 0
        async with self._catching_up:
            while True:
                events = await self.store.revocation_events(self.cursor, PAGE)
                for event in events:
                    await self._apply(event.kind, event.data)
                    self._advance(event.id, applied=True)
                applied += len(events)
                if len(events) < PAGE:
                    return applied

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_EVERY if self.subscribed else self.poll_every)
            try:
                await self.catch_up()
            except Exception as exc:  # the store is down: the next round tries again
                log.warning("reading revocation events failed: %s", _name(exc))

    async def _listen_loop(self) -> None:
        while True:
            try:
                await self._listen()
            except Exception as exc:  # Redis down or gone: retry with backoff
                log.warning("revocation channel lost (Redis: %s); polling the store", _name(exc))
            self.subscribed = False
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        client = _redis_client(self.redis_url, timeout=None)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self.channel)
                self.subscribed, self._backoff = True, BACKOFF_MIN
                await self.catch_up()  # whatever happened while we were not subscribed
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self.on_push(message["data"])
        finally:
            await client.aclose()

    async def on_push(self, raw: bytes | str) -> None:
        """One event from the channel: apply it now, then fill any gap from the store."""
        try:
            message = json.loads(raw)
            event_id, kind, data = int(message["id"]), str(message["kind"]), message["data"]
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring a malformed message on the revocation channel: %s", exc)
            return
        async with self._catching_up:  # (a key reload reads the store)
            if event_id <= self.cursor:
                return  # already read from the store
            if message.get("node") != self.node_id:  # our own is applied already
                await self._apply(kind, data)
            gap = event_id > self.cursor + 1
            self._advance(event_id, applied=not gap)
        if gap:  # an id in between has not reached us (or was rolled back): read the store
            await self.catch_up()

    async def _apply(self, kind: str, data: Any) -> None:
        if kind == "keys_changed":
            if self.reload_keys is not None:
                try:
                    await self.reload_keys()
                except Exception as exc:  # keep signing with the keys we have
                    log.error("reloading the key ring failed: %s", _name(exc))
            return
        self.view.apply(kind, data)

    # -- waiting for news (long polls) -----------------------------------------------------
    def _advance(self, event_id: int, *, applied: bool = False) -> None:
        if applied:
            self.cursor = max(self.cursor, event_id)
        if event_id > self.head:
            self.head = event_id
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_past(self, cursor: int, timeout: float) -> None:
        """Return once this node knows of an event after ``cursor``, or after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.head <= cursor:
                    await self._changed.wait()

    async def close(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None


def _name(exc: BaseException) -> str:
    # the type only: a Redis error message can quote the URL (and its password)
    return type(exc).__name__


def _redis_client(url: str, *, timeout: float | None) -> Any:
    from redis.asyncio import Redis  # noqa: PLC0415 - the redis extra is needed only here

    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=15,  # a dead subscription is noticed by a failed PING
    )
