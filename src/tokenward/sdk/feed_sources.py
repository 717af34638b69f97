"""Where a RevocationFeed reads events: the issuer's HTTP feed, or a Redis channel.

Both hand out plain event dicts ``{"id", "at", "kind", "data"}`` (the cursor is ``id``);
every failure is a :class:`FeedError` carrying no URL (it may hold a password).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import orjson

from tokenward.errors import ConfigError, TokenwardError

__all__ = ["FeedError", "HTTPSource", "Page", "RedisSource", "TokenProvider"]

log = logging.getLogger("tokenward.feed")

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BYTES = 4 * 1024 * 1024
IDLE = 1.0  # seconds between idle ticks of a Redis subscription

TokenProvider = Callable[[], "str | Awaitable[str]"]


class FeedError(TokenwardError):
    """The revocation feed could not be read (the feed retries; verification goes on)."""

    code = "feed_unavailable"


class Page(NamedTuple):
    events: list[dict[str, Any]]
    cursor: int
    more: bool


def event_id(event: Any) -> int:
    """The cursor of an event dict; FeedError when there is none."""
    value = event.get("id") if isinstance(event, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FeedError("an event without a valid id")
    return value


def _page(doc: Any) -> Page:
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise FeedError("the feed's answer is not a page of events")
    cursor = doc.get("cursor")
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
        raise FeedError("the feed's answer has no cursor")
    events = doc["events"]
    ids = [event_id(e) for e in events]
    if ids != sorted(set(ids)):
        raise FeedError("the feed's events are not in cursor order")
    return Page(events, cursor, bool(doc.get("more")))


class HTTPSource:
    """``GET {url}?since=N&wait=S`` (server/routes/revocations.py), Bearer-authenticated
    with the token ``token_provider`` returns (sync or async) when one is given."""

    def __init__(
        self,
        url: str,
        *,
        token_provider: TokenProvider | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ConfigError("the revocation feed URL must be https (plain http only on loopback)")
        self.url, self._token, self._timeout = url, token_provider, timeout
        self._client, self._own = client, client is None

    def __repr__(self) -> str:
        return f"HTTPSource({self.url!r})"

    async def fetch(self, since: int, wait: float = 0.0) -> Page:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            token = self._token()
            headers["Authorization"] = (
                f"Bearer {await token if inspect.isawaitable(token) else token}"
            )
        if self._client is None:  # made here, on the loop that uses it (a thread's own)
            self._client = httpx.AsyncClient(follow_redirects=False)
        params = {"since": str(since), "wait": f"{wait:g}"}
        try:
            resp = await self._client.get(
                self.url, params=params, headers=headers, timeout=self._timeout + wait
            )
        except httpx.HTTPError as exc:
            raise FeedError(f"cannot reach the revocation feed: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise FeedError(f"the revocation feed answered HTTP {resp.status_code}")
        if len(resp.content) > MAX_BYTES:
            raise FeedError("the revocation feed's answer is too large")
        try:
            return _page(orjson.loads(resp.content))
        except orjson.JSONDecodeError:
            raise FeedError("the revocation feed's answer is not JSON") from None

    async def aclose(self) -> None:
        if self._own and self._client is not None:
            await self._client.aclose()
            self._client = None


class RedisSource:
    """The server's Redis channel (``{redis_prefix}:revocations``); needs the redis extra."""

    def __init__(self, url: str, channel: str = "tokenward:revocations") -> None:
        self._url, self.channel = url, channel

    def __repr__(self) -> str:
        return f"RedisSource(channel={self.channel!r})"

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[dict[str, Any] | None]]:
        """Subscribed while the block runs: yields events, and None on every idle second
        (the connection is alive: the feed is current). Redis failures become FeedError."""
        try:
            from redis.asyncio import Redis  # noqa: PLC0415 - optional dependency
            from redis.exceptions import RedisError  # noqa: PLC0415
        except ImportError:
            raise ConfigError("RevocationFeed.redis needs the redis package") from None
        client = Redis.from_url(self._url, socket_connect_timeout=5, health_check_interval=15)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self.channel)
                yield self._messages(pubsub, RedisError)
        except (RedisError, OSError) as exc:
            raise FeedError(f"the Redis channel failed: {type(exc).__name__}") from None
        finally:
            await client.aclose()

    async def _messages(
        self, pubsub: Any, errors: type[Exception]
    ) -> AsyncIterator[dict[str, Any] | None]:
        while True:
            try:
                message = await pubsub.get_message(timeout=IDLE)
            except (errors, OSError) as exc:
                raise FeedError(f"the Redis channel failed: {type(exc).__name__}") from None
            if message is None:
                yield None
                continue
            try:
                event = json.loads(message["data"])
                event_id(event)
            except (ValueError, TypeError, FeedError) as exc:
                log.warning("ignoring a malformed message on the revocation channel: %s", exc)
                continue
            yield event
