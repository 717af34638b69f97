"""RevocationFeed: keeps a resource server's RevocationView current, pushed by the issuer.

Two ways to follow the issuer's revocation events (docs/scale-out.md):

- ``RevocationFeed.http(url, view, token_provider=...)`` long-polls
  ``GET /api/v1/revocations?since=CURSOR&wait=25``: an event arrives within a round trip;
- ``RevocationFeed.redis(url, view, catch_up_url=...)`` subscribes to the issuer's Redis
  channel, and reads the HTTP feed from its cursor after every (re)subscription, when a
  pushed id shows a gap, and every ``reconcile_every`` seconds.

Events are applied in cursor order (each id once). After a disconnect the feed retries
with backoff and resumes from its cursor, so nothing is missed. It runs as an asyncio
task (:meth:`start`) or in a thread of its own for sync frameworks (:meth:`start_thread`).

When the feed has been unreachable for longer than ``stale_after`` seconds, ``on_stale``
decides what the verifier accepts meanwhile:

- ``"fail_closed"`` (default): tokens issued after the feed was last heard from are
  refused — their revocation could have been missed; older ones live out their short
  lifetime. Before the feed was ever heard from, that is every token;
- ``"reject_all"``: every token is refused;
- ``"fail_open"``: every token the view does not know to be revoked is accepted.

Memory stays bounded: deny-list entries are purged once the tokens they deny expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Literal

import httpx

from tokenward.clock import Clock, system_clock
from tokenward.revocation import RevocationView
from tokenward.sdk.feed_runner import FeedRunner
from tokenward.sdk.feed_sources import (
    FeedError,
    HTTPSource,
    Page,
    RedisSource,
    TokenProvider,
    event_id,
)

__all__ = ["FeedError", "HTTPSource", "OnStale", "RedisSource", "RevocationFeed"]

log = logging.getLogger("tokenward.feed")

OnStale = Literal["fail_closed", "fail_open", "reject_all"]
_POLICIES = ("fail_closed", "fail_open", "reject_all")
MAX_PAGES = 1000  # per catch-up; a feed that never ends a page is not followed forever


class RevocationFeed(FeedRunner):
    """Applies the issuer's revocation events to ``view``; see the module docs."""

    def __init__(
        self,
        view: RevocationView,
        *,
        http: HTTPSource | None = None,
        redis: RedisSource | None = None,
        clock: Clock = system_clock,
        on_stale: OnStale = "fail_closed",
        stale_after: float = 60.0,
        wait: float = 25.0,
        reconcile_every: float = 60.0,
        purge_every: float = 60.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        on_keys_changed: Callable[[], Any] | None = None,
    ) -> None:
        if http is None and redis is None:
            raise ValueError("a RevocationFeed needs an HTTP feed, a Redis channel or both")
        if on_stale not in _POLICIES:
            raise ValueError(f"on_stale must be one of {_POLICIES}")
        if http is not None and redis is None and stale_after <= wait:
            raise ValueError("stale_after must exceed the long-poll wait")
        self.view, self.http_source, self.redis_source = view, http, redis
        self.clock = clock
        self.on_stale, self.stale_after, self.wait = on_stale, stale_after, wait
        self.reconcile_every, self.purge_every = reconcile_every, purge_every
        self.on_keys_changed = on_keys_changed
        self.cursor = 0  # every event up to this id is applied
        self.last_contact: float | None = None  # when the feed last proved us current
        self.started_at = clock()
        self.ready = threading.Event()  # set on the first contact
        self._backoff, self._delay = backoff, backoff[0]
        self._last_purge = self._last_reconcile = self.started_at
        self._keys_changed = False
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"RevocationFeed(cursor={self.cursor}, {self.http_source!r}, {self.redis_source!r})"

    @classmethod
    def http(
        cls,
        url: str,
        view: RevocationView,
        *,
        token_provider: TokenProvider | None = None,
        client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> RevocationFeed:
        """Long-poll ``url`` (the issuer's ``/api/v1/revocations``). ``token_provider``
        returns a client credentials access token with scope ``revocations:read`` (sync or
        async; called per request, so it may refresh). A ``client`` must belong to the loop
        the feed runs on: leave it out with :meth:`start_thread`."""
        source = HTTPSource(url, token_provider=token_provider, client=client)
        return cls(view, http=source, **options)

    @classmethod
    def redis(
        cls,
        url: str,
        view: RevocationView,
        *,
        channel: str = "tokenward:revocations",
        catch_up_url: str | None = None,
        token_provider: TokenProvider | None = None,
        client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> RevocationFeed:
        """Subscribe to the issuer's Redis ``channel`` (``{redis_prefix}:revocations``);
        with ``catch_up_url`` (the HTTP feed) nothing published while disconnected is lost."""
        catch_up = (
            None
            if catch_up_url is None
            else HTTPSource(catch_up_url, token_provider=token_provider, client=client)
        )
        return cls(view, http=catch_up, redis=RedisSource(url, channel), **options)

    # -- applying events -------------------------------------------------------------------
    def apply(self, events: Iterable[dict[str, Any]]) -> int:
        """Apply events after the cursor, in cursor order; returns how many were new."""
        applied = 0
        for event in sorted(events, key=event_id):
            number = event_id(event)
            if number <= self.cursor:
                continue  # seen already (a push and a catch-up can overlap)
            kind, data = event.get("kind"), event.get("data")
            if kind == "keys_changed":
                self._keys_changed = True
            elif isinstance(kind, str):
                self.view.apply(kind, data if isinstance(data, dict) else {})
            self.cursor, applied = number, applied + 1
        return applied

    def contact(self) -> None:
        """The feed just proved us current."""
        self.last_contact = self.clock()
        self.ready.set()
        self._delay = self._backoff[0]

    def check(self) -> bool:
        """Apply the staleness policy now, and purge expired denials when due; True if stale."""
        now = self.clock()
        heard = self.last_contact if self.last_contact is not None else self.started_at
        stale = now - heard > self.stale_after and self.on_stale != "fail_open"
        if not stale:
            cutoff = None
        elif self.on_stale == "fail_closed" and self.last_contact is not None:
            cutoff = self.last_contact
        else:
            cutoff = float("-inf")
        self.view.refuse_issued_after(cutoff)
        if now - self._last_purge >= self.purge_every:
            self._last_purge = now
            self.view.purge(now)
        return stale

    # -- following -------------------------------------------------------------------------
    async def catch_up(self) -> int:
        """Read the HTTP feed from the cursor until it is drained; returns events applied."""
        assert self.http_source is not None
        applied = 0
        for _ in range(MAX_PAGES):
            page = await self.http_source.fetch(self.cursor, 0.0)
            applied += self._take(page)
            if not page.more:
                break
        self.contact()
        self._last_reconcile = self.clock()
        await self._announce_keys()
        return applied

    async def poll_once(self) -> int:
        """One long poll (returns early when an event arrives); returns events applied."""
        assert self.http_source is not None
        page = await self.http_source.fetch(self.cursor, self.wait)
        applied = self._take(page)
        self.contact()
        if page.more:
            applied += await self.catch_up()
        await self._announce_keys()
        return applied

    def _take(self, page: Page) -> int:
        if not page.events and page.cursor < self.cursor:
            log.warning("the revocation feed restarted below our cursor; following it")
            self.cursor = page.cursor
        return self.apply(page.events)

    async def on_push(self, event: dict[str, Any]) -> None:
        """An event from the channel: apply it, or fill the gap before it first."""
        if event_id(event) > self.cursor + 1:
            await self._reconcile()  # an id in between never reached us
        self.apply([event])
        await self._announce_keys()

    async def _reconcile(self) -> None:
        """Catch up over HTTP if there is a catch-up URL; a failure is retried later."""
        if self.http_source is None:
            return
        try:
            await self.catch_up()
        except (FeedError, httpx.HTTPError) as exc:
            self._last_reconcile = self.clock()  # the next reconcile tries again
            log.warning("revocation catch-up failed: %s", exc)

    async def _announce_keys(self) -> None:
        if self._keys_changed and self.on_keys_changed is not None:
            self._keys_changed = False
            try:
                await asyncio.to_thread(self.on_keys_changed)
            except Exception:  # a key refresh failing must not stop the feed
                log.exception("on_keys_changed failed")

    async def _follow_http(self) -> None:
        await self.catch_up()
        while True:
            await self.poll_once()

    async def _follow_redis(self) -> None:
        assert self.redis_source is not None
        async with self.redis_source.subscribe() as messages:
            await self._reconcile()  # what happened while we were not subscribed
            self.contact()
            async for event in messages:
                if event is not None:
                    await self.on_push(event)
                self.contact()  # the subscription is alive: nothing pushed was missed
                if self._reconcile_due():
                    await self._reconcile()

    def _reconcile_due(self) -> bool:
        return self.clock() - self._last_reconcile >= self.reconcile_every

    async def run(self) -> None:
        """Follow the feed until cancelled (retrying with backoff); checks staleness."""
        watchdog = asyncio.create_task(self._watch(), name="tokenward-feed-watchdog")
        try:
            while True:
                try:
                    await (self._follow_redis() if self.redis_source else self._follow_http())
                except (FeedError, httpx.HTTPError, OSError) as exc:
                    log.warning("revocation feed interrupted: %s; retrying", exc)
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self._backoff[1])
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(min(1.0, self.stale_after / 4))
