"""RevocationFeed: cursor order, resuming after a disconnect, staleness policies, bounded
memory, thread and task modes — with fake transports and a frozen clock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock, Issuer, RevocationView, RevokedToken, Verifier
from tokenward.errors import ConfigError
from tokenward.sdk.feed import FeedError, RevocationFeed
from tokenward.sdk.feed_sources import HTTPSource, Page

from ...conftest import AUD, ISS, T0

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def deny(n: int, exp: float = T0 + 900, jti: str | None = None) -> dict[str, Any]:
    return {"id": n, "at": T0, "kind": "deny", "data": {"jti": jti or f"j{n}", "exp": exp}}


class FakeFeed:
    """The issuer's HTTP feed in memory: pages of ``page_size``; can be taken down."""

    def __init__(self, page_size: int = 2) -> None:
        self.events: list[dict[str, Any]] = []
        self.page_size = page_size
        self.down = False
        self.calls: list[tuple[int, float]] = []
        self.lock = threading.Lock()  # the thread-mode test adds events from another thread

    def add(self, *events: dict[str, Any]) -> None:
        with self.lock:
            self.events.extend(events)

    async def fetch(self, since: int, wait: float = 0.0) -> Page:
        self.calls.append((since, wait))
        if self.down:
            raise FeedError("cannot reach the revocation feed: ConnectError")
        with self.lock:
            newer = [e for e in self.events if e["id"] > since]
        if not newer and wait:
            await asyncio.sleep(0.01)  # a (very short) long poll
        page = newer[: self.page_size]
        # like the server: an empty page's cursor never exceeds the newest event
        head = max((e["id"] for e in self.events), default=0)
        return Page(page, page[-1]["id"] if page else min(since, head), len(newer) > self.page_size)

    async def aclose(self) -> None:
        return None


def feed_on(fake: FakeFeed, view: RevocationView, clock: FrozenClock, **kw: Any) -> RevocationFeed:
    feed = RevocationFeed(view, http=fake, clock=clock, **kw)  # type: ignore[arg-type]
    return feed


@pytest.fixture
def view() -> RevocationView:
    return RevocationView()


# -- applying in cursor order --------------------------------------------------------------
def test_events_apply_in_cursor_order_once(view: RevocationView, clock: FrozenClock) -> None:
    feed = feed_on(FakeFeed(), view, clock)
    tv = {"id": 2, "kind": "token_version", "data": {"iss": ISS, "sub": "bob", "version": 4}}
    assert feed.apply([tv, deny(1), deny(3)]) == 3
    assert feed.cursor == 3 and len(view) == 2 and view.token_version(ISS, "bob") == 4
    assert feed.apply([deny(2, jti="other"), deny(3)]) == 0  # at or below the cursor: seen
    assert len(view) == 2


def test_an_unreadable_event_is_skipped_but_counted(
    view: RevocationView, clock: FrozenClock
) -> None:
    feed = feed_on(FakeFeed(), view, clock)
    bad = {"id": 1, "kind": "deny", "data": {"jti": "j1"}}  # no exp
    assert feed.apply([bad, deny(2)]) == 2
    assert feed.cursor == 2 and len(view) == 1


async def test_catch_up_pages_until_drained(view: RevocationView, clock: FrozenClock) -> None:
    fake = FakeFeed(page_size=2)
    fake.add(*(deny(n) for n in range(1, 6)))
    feed = feed_on(fake, view, clock)
    assert await feed.catch_up() == 5
    assert feed.cursor == 5 and len(view) == 5
    assert [since for since, _ in fake.calls] == [0, 2, 4]
    assert feed.last_contact == T0 and feed.ready.is_set()


async def test_resumes_from_its_cursor_after_a_disconnect(
    view: RevocationView, clock: FrozenClock
) -> None:
    fake = FakeFeed()
    fake.add(deny(1))
    feed = feed_on(fake, view, clock)
    await feed.poll_once()
    fake.down = True
    with pytest.raises(FeedError):
        await feed.poll_once()
    fake.add(deny(2), deny(3))  # revoked while we could not hear
    fake.down = False
    await feed.poll_once()
    assert feed.cursor == 3 and len(view) == 3
    assert [since for since, _ in fake.calls] == [0, 1, 1]
    assert all(wait == feed.wait for _, wait in fake.calls)  # long polls


async def test_a_feed_restarted_below_our_cursor_is_followed(
    view: RevocationView, clock: FrozenClock
) -> None:
    fake = FakeFeed()
    feed = feed_on(fake, view, clock)
    feed.cursor = 40  # the issuer's database was restored from an older backup
    await feed.poll_once()
    assert feed.cursor == 0
    fake.add(deny(1))
    await feed.poll_once()
    assert feed.cursor == 1 and len(view) == 1


# -- pushed events (the Redis mode) --------------------------------------------------------
async def test_a_push_with_a_gap_catches_up_first(view: RevocationView, clock: FrozenClock) -> None:
    fake = FakeFeed()
    fake.add(deny(1), deny(2), deny(3))
    feed = feed_on(fake, view, clock)
    await feed.on_push(deny(1))  # next in line: no HTTP needed
    assert feed.cursor == 1 and fake.calls == []
    await feed.on_push(deny(3))  # 2 never came: read it first
    assert feed.cursor == 3 and len(view) == 3 and fake.calls[0][0] == 1
    await feed.on_push(deny(2))  # late duplicate
    assert feed.cursor == 3


class FakeRedis:
    """A channel that delivers ``rounds`` of events, each ending with a dropped connection
    (``on_drop`` runs then), and after the last round stays quiet."""

    def __init__(
        self, rounds: list[list[dict[str, Any] | None]], on_drop: Any = lambda: None
    ) -> None:
        self.rounds, self.on_drop = rounds, on_drop
        self.subscriptions = 0

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[dict[str, Any] | None]]:
        self.subscriptions += 1
        if not self.rounds:
            await asyncio.Event().wait()  # stays subscribed, silent, until cancelled
        messages = self.rounds.pop(0)

        async def deliver() -> AsyncIterator[dict[str, Any] | None]:
            for message in messages:
                yield message
            self.on_drop()
            raise FeedError("the Redis channel failed: ConnectionError")

        yield deliver()


async def test_redis_mode_catches_up_over_http_after_a_reconnect(
    view: RevocationView, clock: FrozenClock
) -> None:
    fake = FakeFeed()
    fake.add(deny(1), deny(2))
    # 3 is published while the connection is down: only the HTTP catch-up can bring it
    redis = FakeRedis([[deny(1), None, deny(2)], [deny(4)]], on_drop=lambda: fake.add(deny(3)))
    feed = RevocationFeed(
        view,
        http=fake,  # type: ignore[arg-type]
        redis=redis,  # type: ignore[arg-type]
        clock=clock,
        backoff=(0.001, 0.002),
    )
    task = feed.start()
    try:
        for _ in range(500):  # bounded wait for the second subscription
            if redis.subscriptions >= 2 and feed.cursor == 4:
                break
            await asyncio.sleep(0.01)
    finally:
        await feed.aclose()
    assert feed.cursor == 4 and len(view) == 4  # 3 over HTTP, 4 pushed after it
    # each subscription started with a catch-up from the cursor it had
    assert [since for since, _ in fake.calls] == [0, 2]
    assert task.done()


# -- staleness -----------------------------------------------------------------------------
@pytest.fixture
def tokens(ring: Any, clock: FrozenClock, view: RevocationView) -> tuple[Issuer, Verifier]:
    issuer = Issuer(ring, issuer=ISS, clock=clock)
    return issuer, Verifier(ring, issuer=ISS, audience=AUD, clock=clock, revocation=view)


async def test_fail_closed_refuses_tokens_issued_after_the_last_contact(
    view: RevocationView, clock: FrozenClock, tokens: tuple[Issuer, Verifier]
) -> None:
    issuer, verifier = tokens
    feed = feed_on(FakeFeed(), view, clock, stale_after=60)
    older = issuer.issue("alice", AUD)
    await feed.catch_up()  # contact at T0
    clock.advance(30)
    newer = issuer.issue("alice", AUD)
    assert feed.check() is False and verifier.verify(newer)
    clock.advance(31)  # 61 s without contact
    assert feed.check() is True
    assert verifier.verify(older)["sub"] == "alice"  # issued before the last contact
    with pytest.raises(RevokedToken):
        verifier.verify(newer)
    await feed.catch_up()  # the feed is back: nothing is refused for staleness any more
    assert feed.check() is False and verifier.verify(newer)


async def test_reject_all_and_fail_open(
    view: RevocationView, clock: FrozenClock, tokens: tuple[Issuer, Verifier]
) -> None:
    issuer, verifier = tokens
    token = issuer.issue("alice", AUD)
    clock.advance(1)
    feed = feed_on(FakeFeed(), view, clock, stale_after=60, on_stale="reject_all")
    await feed.catch_up()
    clock.advance(61)
    assert feed.check() is True
    with pytest.raises(RevokedToken):
        verifier.verify(token)  # even one issued before the last contact
    feed.on_stale = "fail_open"
    assert feed.check() is False and verifier.verify(token)


def test_a_feed_never_heard_from_fails_closed_on_everything(
    view: RevocationView, clock: FrozenClock, tokens: tuple[Issuer, Verifier]
) -> None:
    issuer, verifier = tokens
    token = issuer.issue("alice", AUD)
    feed = feed_on(FakeFeed(), view, clock, stale_after=60)
    assert feed.check() is False and verifier.verify(token)  # a grace of stale_after
    clock.advance(61)
    assert feed.check() is True
    with pytest.raises(RevokedToken):
        verifier.verify(token)


def test_settings_are_checked(view: RevocationView) -> None:
    with pytest.raises(ValueError, match="needs"):
        RevocationFeed(view)
    with pytest.raises(ValueError, match="on_stale"):
        RevocationFeed(view, http=FakeFeed(), on_stale="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_after"):
        RevocationFeed(view, http=FakeFeed(), stale_after=10, wait=25)  # type: ignore[arg-type]


# -- memory stays bounded ------------------------------------------------------------------
def test_expired_denials_are_purged_on_the_timer(view: RevocationView, clock: FrozenClock) -> None:
    feed = feed_on(FakeFeed(), view, clock, purge_every=60, stale_after=600)
    feed.apply([deny(1, exp=T0 + 30), deny(2, exp=T0 + 300)])
    clock.advance(59)
    feed.check()
    assert len(view) == 2  # not due yet
    clock.advance(1)
    feed.check()
    assert len(view) == 1  # j1's token has expired: so has its denial
    clock.advance(300)
    feed.check()
    assert len(view) == 0


async def test_keys_changed_calls_the_hook_once(view: RevocationView, clock: FrozenClock) -> None:
    calls: list[int] = []
    fake = FakeFeed()
    fake.add({"id": 1, "kind": "keys_changed", "data": {"version": 2}}, deny(2))
    feed = feed_on(fake, view, clock, on_keys_changed=lambda: calls.append(1))
    await feed.catch_up()
    assert calls == [1] and feed.cursor == 2


# -- running it ----------------------------------------------------------------------------
async def test_run_retries_with_backoff_until_the_feed_answers(
    view: RevocationView, clock: FrozenClock
) -> None:
    fake = FakeFeed()
    fake.down = True
    fake.add(deny(1))
    feed = feed_on(fake, view, clock, backoff=(0.001, 0.004))
    feed.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.005)
        assert len(fake.calls) >= 3 and feed.cursor == 0  # retried, bounded backoff
        fake.down = False
        for _ in range(500):
            if feed.cursor == 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await feed.aclose()
    assert feed.cursor == 1 and len(view) == 1


def test_thread_mode_for_sync_verifiers(view: RevocationView) -> None:
    fake = FakeFeed()
    fake.add(deny(1))
    feed = RevocationFeed(view, http=fake)  # type: ignore[arg-type]
    thread = feed.start_thread(ready_timeout=5)
    try:
        assert feed.ready.is_set() and feed.cursor == 1
        fake.add(deny(2))
        deadline = time.monotonic() + 5
        while feed.cursor < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert feed.cursor == 2 and len(view) == 2
    finally:
        feed.stop()
    assert not thread.is_alive()


# -- the HTTP source -----------------------------------------------------------------------
URL = "https://auth.example/api/v1/revocations"


def source(handler: Any, **kw: Any) -> HTTPSource:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HTTPSource(URL, client=client, **kw)


async def test_http_source_asks_with_the_cursor_and_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"events": [deny(8)], "cursor": 8, "more": False})

    async def token() -> str:
        return "tok-async"

    page = await source(handler, token_provider=token).fetch(7, 25)
    assert page == Page([deny(8)], 8, False)
    assert seen[0].url.params["since"] == "7" and seen[0].url.params["wait"] == "25"
    assert seen[0].headers["authorization"] == "Bearer tok-async"
    await source(handler, token_provider=lambda: "tok-sync").fetch(0)
    assert seen[1].headers["authorization"] == "Bearer tok-sync"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b"{}"),
        (500, b"{}"),
        (200, b"not json"),
        (200, b"[]"),
        (200, json.dumps({"events": [], "cursor": "7"}).encode()),
        (200, json.dumps({"events": [deny(2), deny(1)], "cursor": 2}).encode()),
        (200, json.dumps({"events": [{"kind": "deny"}], "cursor": 2}).encode()),
    ],
)
async def test_http_source_failures_are_feed_errors(status: int, body: bytes) -> None:
    with pytest.raises(FeedError):
        await source(lambda _r: httpx.Response(status, content=body)).fetch(0)


async def test_http_source_network_failure_is_a_feed_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(FeedError, match="ConnectError"):
        await source(handler).fetch(0)


def test_http_source_wants_https_except_on_loopback() -> None:
    with pytest.raises(ConfigError):
        HTTPSource("http://auth.example/api/v1/revocations")
    HTTPSource("http://127.0.0.1:8000/api/v1/revocations")
    assert "RedisSource" in repr(RevocationFeed.redis("redis://:pw@localhost/0", RevocationView()))
    assert ":pw@" not in repr(RevocationFeed.redis("redis://:pw@localhost/0", RevocationView()))
