"""TokenwardAuth against a fake issuer and API on httpx.MockTransport; time is a FrozenClock.

The fake rotates refresh tokens like the real server (a used token is refused with
``invalid_grant``), so a second refresh with the same token would show up as a failure.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
import httpx
import pytest

from tokenward import FrozenClock, errors
from tokenward.client import (
    FileTokenStore,
    MemoryTokenStore,
    SessionRevoked,
    TokenSet,
    TokenStore,
    TokenwardAuth,
)
from tokenward.errors import AuthenticationFailed, ConfigError, RateLimited

from ...conftest import T0

ISSUER = "https://auth.example"
API = "https://api.example/data"
TTL = 900


class FakeIssuer:
    """The issuer's login/refresh/token endpoints and a protected API, in memory."""

    def __init__(self) -> None:
        self.generation = 0
        self.access, self.refresh = "at-0", "rt-0"
        self.used: set[str] = set()
        self.refreshes: list[httpx.Request] = []
        self.api_calls: list[str | None] = []  # the Authorization header of each API call
        self.refresh_status: int | None = None  # force a failure status on refresh
        self.api_always_401 = False
        self.on_api: Any = None  # called with each API request, before answering
        self.yields = 0  # async: how often the refresh handler yields to the loop
        self.entered: asyncio.Event | None = None  # async: set when a refresh arrives ...
        self.release: asyncio.Event | None = None  # ... which is answered once this is set
        self.body_extra: dict[str, Any] = {}

    def tokens(self) -> TokenSet:
        return TokenSet(self.access, self.refresh, T0 + TTL, T0)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/data":
            return self.api(request)
        if path == "/api/v1/login":
            return self.login(json.loads(request.content))
        if path in ("/api/v1/refresh", "/oauth2/token"):
            self.refreshes.append(request)
            return self.rotate(request)
        return httpx.Response(404)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/data":
            for _ in range(self.yields):  # let every other task reach the lock meanwhile
                await asyncio.sleep(0)
            if self.entered is not None and self.release is not None:
                self.entered.set()
                await self.release.wait()
        return self.handle(request)

    def api(self, request: httpx.Request) -> httpx.Response:
        self.api_calls.append(request.headers.get("authorization"))
        if self.on_api is not None:
            self.on_api(request)
        if self.api_always_401 or request.headers.get("authorization") != f"Bearer {self.access}":
            return httpx.Response(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        return httpx.Response(200, json={"ok": True, "body": request.content.decode()})

    def login(self, body: dict[str, Any]) -> httpx.Response:
        if body != {"username": "alice", "password": "pw", "cookie": False}:
            return httpx.Response(401, json={"error": "invalid_credentials"})
        return self.issue()

    def issue(self) -> httpx.Response:
        body = {"access_token": self.access, "token_type": "Bearer", "expires_in": TTL}
        return httpx.Response(200, json=body | {"refresh_token": self.refresh} | self.body_extra)

    def presented(self, request: httpx.Request) -> str:
        if request.url.path == "/oauth2/token":
            return parse_qs(request.content.decode())["refresh_token"][0]
        token: str = json.loads(request.content)["refresh_token"]
        return token

    def rotate(self, request: httpx.Request) -> httpx.Response:
        if self.refresh_status is not None:
            return httpx.Response(self.refresh_status)
        token = self.presented(request)
        if token != self.refresh:  # unknown or reused: RFC 6749 §5.2
            self.used.add(token)
            return httpx.Response(400, json={"error": "invalid_grant", "status": 400})
        self.used.add(token)
        self.generation += 1
        self.access, self.refresh = f"at-{self.generation}", f"rt-{self.generation}"
        return self.issue()

    def revoke_session(self) -> None:
        self.used.add(self.refresh)
        self.refresh = "gone"
        self.access = "gone"


@pytest.fixture
def fake() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def store(fake: FakeIssuer) -> MemoryTokenStore:
    return MemoryTokenStore(fake.tokens())


def make_auth(fake: FakeIssuer, store: TokenStore, clock: FrozenClock, **kw: Any) -> TokenwardAuth:
    transport = httpx.MockTransport(fake.handle)
    atransport = httpx.MockTransport(fake.ahandle)
    return TokenwardAuth(
        ISSUER,
        store=store,
        clock=clock,
        http=httpx.Client(transport=transport),
        ahttp=httpx.AsyncClient(transport=atransport),
        **kw,
    )


@pytest.fixture
def auth(fake: FakeIssuer, store: MemoryTokenStore, clock: FrozenClock) -> TokenwardAuth:
    return make_auth(fake, store, clock)


@pytest.fixture
def api(fake: FakeIssuer, auth: TokenwardAuth) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client:
        yield client


def aclient(fake: FakeIssuer, auth: TokenwardAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(fake.ahandle), auth=auth)


def bearer(request: httpx.Request) -> str | None:
    return request.headers.get("authorization")


# -- attaching and refreshing ---------------------------------------------------------------
def test_attaches_the_stored_access_token(fake: FakeIssuer, api: httpx.Client) -> None:
    assert api.get(API).status_code == 200
    assert fake.api_calls == ["Bearer at-0"]
    assert fake.refreshes == []


def test_refreshes_before_expiry_and_not_earlier(
    fake: FakeIssuer, api: httpx.Client, store: MemoryTokenStore, clock: FrozenClock
) -> None:
    clock.advance(TTL - 31)  # 31 s left: outside the 30 s margin
    api.get(API)
    assert fake.refreshes == []
    clock.advance(1)  # 30 s left: refresh first, then send the request
    assert api.get(API).status_code == 200
    assert len(fake.refreshes) == 1
    assert fake.api_calls[-1] == "Bearer at-1"
    assert bearer(fake.refreshes[0]) is None  # the refresh does not go through the auth flow
    assert json.loads(fake.refreshes[0].content) == {"refresh_token": "rt-0"}
    saved = store.load()
    assert saved is not None and saved.refresh_token == "rt-1"
    assert saved.expires_at == clock.now + TTL  # expires_in, counted on our clock
    api.get(API)
    assert len(fake.refreshes) == 1  # the new token is good for another TTL


def test_the_margin_never_exceeds_half_the_lifetime(
    fake: FakeIssuer, clock: FrozenClock, api: httpx.Client, store: MemoryTokenStore
) -> None:
    store.save(TokenSet("at-0", "rt-0", T0 + 40, T0))  # a 40 s token, a 30 s margin
    clock.advance(19)
    api.get(API)
    assert fake.refreshes == []  # 21 s left: not yet, or every token would refresh at once
    clock.advance(1)
    api.get(API)
    assert len(fake.refreshes) == 1


@pytest.mark.anyio
async def test_fifty_concurrent_async_requests_across_expiry_make_one_refresh(
    fake: FakeIssuer, auth: TokenwardAuth, clock: FrozenClock
) -> None:
    fake.yields = 20
    clock.advance(TTL)  # expired
    async with aclient(fake, auth) as client:
        responses = await asyncio.gather(*(client.get(API) for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert len(fake.refreshes) == 1
    assert set(fake.api_calls) == {"Bearer at-1"}


def test_twenty_threads_across_expiry_make_one_refresh(
    fake: FakeIssuer, api: httpx.Client, clock: FrozenClock
) -> None:
    gate = threading.Barrier(20)
    original = fake.rotate

    def slow_rotate(request: httpx.Request) -> httpx.Response:
        # Network latency (not waiting for expiry), so the other threads queue up meanwhile.
        threading.Event().wait(0.05)
        return original(request)

    fake.rotate = slow_rotate  # type: ignore[method-assign]
    clock.advance(TTL - 10)
    results: list[int] = []

    def call() -> None:
        gate.wait(5)
        results.append(api.get(API).status_code)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 20
    assert len(fake.refreshes) == 1
    assert set(fake.api_calls) == {"Bearer at-1"}


@pytest.mark.anyio
async def test_a_cancelled_caller_does_not_lose_the_rotated_token(
    fake: FakeIssuer, auth: TokenwardAuth, store: MemoryTokenStore, clock: FrozenClock
) -> None:
    fake.entered, fake.release = asyncio.Event(), asyncio.Event()
    clock.advance(TTL)
    async with aclient(fake, auth) as client:
        caller = asyncio.ensure_future(client.get(API))
        await fake.entered.wait()  # the refresh is on the wire: the server has rotated
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        fake.entered, release = None, fake.release
        release.set()
        with anyio.fail_after(5):  # the shielded refresh finishes on its own (a thread saves)
            while (saved := store.load()) is None or saved.refresh_token != "rt-1":
                await asyncio.sleep(0.005)
        assert store.load() == TokenSet("at-1", "rt-1", clock.now + TTL, clock.now)
        assert (await client.get(API)).status_code == 200
    assert len(fake.refreshes) == 1  # the spent rt-0 was never presented again


@pytest.mark.anyio
async def test_sync_and_async_callers_of_one_instance_share_the_refresh(
    fake: FakeIssuer, auth: TokenwardAuth, api: httpx.Client, clock: FrozenClock
) -> None:
    entered, release = threading.Event(), threading.Event()
    original = fake.rotate

    def blocking_rotate(request: httpx.Request) -> httpx.Response:
        entered.set()
        release.wait(5)
        return original(request)

    fake.rotate = blocking_rotate  # type: ignore[method-assign]
    clock.advance(TTL)
    statuses: list[int] = []
    sync_caller = threading.Thread(target=lambda: statuses.append(api.get(API).status_code))
    sync_caller.start()
    assert await anyio.to_thread.run_sync(entered.wait, 5)  # a sync refresh is on the wire
    async with aclient(fake, auth) as client:
        async_caller = asyncio.ensure_future(client.get(API))
        for _ in range(50):
            await asyncio.sleep(0)  # the async caller now waits for the thread's refresh
        release.set()
        assert (await async_caller).status_code == 200
    sync_caller.join(5)
    assert statuses == [200] and len(fake.refreshes) == 1


# -- 401 -------------------------------------------------------------------------------------
def test_a_401_refreshes_and_retries_once(
    fake: FakeIssuer, api: httpx.Client, store: MemoryTokenStore
) -> None:
    fake.access = "at-revoked-on-the-server"  # e.g. a password change killed at-0
    response = api.post(API, content=b"payload")
    assert response.status_code == 200
    assert response.json()["body"] == "payload"  # the body was sent again on the retry
    assert fake.api_calls == ["Bearer at-0", "Bearer at-1"]
    assert len(fake.refreshes) == 1
    assert store.load() == TokenSet("at-1", "rt-1", T0 + TTL, T0)


def test_a_second_401_is_returned_as_is(fake: FakeIssuer, api: httpx.Client) -> None:
    fake.api_always_401 = True
    response = api.get(API)
    assert response.status_code == 401
    assert len(fake.api_calls) == 2 and len(fake.refreshes) == 1  # no loop
    api.get(API)
    assert len(fake.api_calls) == 4 and len(fake.refreshes) == 2  # one per request, at most


def test_a_401_for_another_scheme_is_not_ours_to_retry(fake: FakeIssuer, api: httpx.Client) -> None:
    original = fake.api

    def basic_only(request: httpx.Request) -> httpx.Response:
        original(request)
        return httpx.Response(401, headers={"www-authenticate": 'Basic realm="proxy"'})

    fake.api = basic_only  # type: ignore[method-assign]
    assert api.get(API).status_code == 401
    assert len(fake.api_calls) == 1 and fake.refreshes == []


@pytest.mark.anyio
async def test_concurrent_401s_after_one_refresh_do_not_refresh_again(
    fake: FakeIssuer, auth: TokenwardAuth
) -> None:
    fake.yields = 20
    fake.access = "at-revoked-on-the-server"
    async with aclient(fake, auth) as client:
        responses = await asyncio.gather(*(client.get(API) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len(fake.refreshes) == 1  # the token each had used was no longer the current one


# -- revoked sessions ---------------------------------------------------------------------
def test_invalid_grant_raises_session_revoked_once_and_never_loops(
    fake: FakeIssuer, api: httpx.Client, clock: FrozenClock
) -> None:
    fake.revoke_session()
    with pytest.raises(SessionRevoked):
        api.get(API)  # 401, refresh refused
    assert len(fake.refreshes) == 1 and len(fake.api_calls) == 1
    with pytest.raises(SessionRevoked):
        api.get(API)  # known dead: no call to the issuer or the API at all
    assert len(fake.refreshes) == 1 and len(fake.api_calls) == 1


@pytest.mark.anyio
async def test_concurrent_requests_on_a_revoked_session_make_one_refresh_call(
    fake: FakeIssuer, auth: TokenwardAuth, clock: FrozenClock
) -> None:
    fake.yields = 20
    fake.revoke_session()
    clock.advance(TTL)
    async with aclient(fake, auth) as client:
        results = await asyncio.gather(
            *(client.get(API) for _ in range(30)), return_exceptions=True
        )
    assert all(isinstance(r, SessionRevoked) for r in results)
    assert len(fake.refreshes) == 1 and fake.api_calls == []


def test_a_new_login_in_the_store_revives_the_session(
    fake: FakeIssuer, api: httpx.Client, store: MemoryTokenStore
) -> None:
    fake.revoke_session()
    with pytest.raises(SessionRevoked):
        api.get(API)
    fake.access, fake.refresh = "at-new", "rt-new"
    store.save(TokenSet("at-new", "rt-new", T0 + TTL, T0))  # e.g. another process logged in
    assert api.get(API).status_code == 200


def test_no_stored_session_is_session_revoked(fake: FakeIssuer, clock: FrozenClock) -> None:
    auth = make_auth(fake, MemoryTokenStore(), clock)
    with (
        httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client,
        pytest.raises(SessionRevoked, match="log in"),
    ):
        client.get(API)
    assert fake.api_calls == []


def test_session_revoked_is_a_tokenward_error_with_its_own_code() -> None:
    assert issubclass(SessionRevoked, errors.TokenwardError)
    assert SessionRevoked.code == "session_revoked" and "SessionRevoked" in errors.__all__


# -- persistence ----------------------------------------------------------------------------
def test_the_rotated_token_is_on_disk_before_the_request_goes_on(
    fake: FakeIssuer, clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "tokens.json"
    store = FileTokenStore(path)
    store.save(fake.tokens())
    seen_on_disk: list[dict[str, Any]] = []
    fake.on_api = lambda _: seen_on_disk.append(json.loads(path.read_text()))
    auth = make_auth(fake, store, clock)
    clock.advance(TTL)
    with httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client:
        assert client.get(API).status_code == 200
    assert seen_on_disk[0]["refresh_token"] == "rt-1"  # saved before the API call was made
    assert (
        json.loads(path.read_text())
        == TokenSet("at-1", "rt-1", clock.now + TTL, clock.now).to_dict()
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no temporary left


@pytest.mark.anyio
async def test_async_refresh_saves_through_the_store(
    fake: FakeIssuer, clock: FrozenClock, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    store.save(fake.tokens())
    auth = make_auth(fake, store, clock)
    clock.advance(TTL)
    async with aclient(fake, auth) as client:
        assert (await client.get(API)).status_code == 200
    assert FileTokenStore(tmp_path / "tokens.json").load() == TokenSet(
        "at-1", "rt-1", clock.now + TTL, clock.now
    )


def test_file_store_round_trip_and_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    assert store.load() is None
    tokens = TokenSet("secret-access", "secret-refresh", None, None)
    store.save(tokens)
    assert store.load() == tokens
    (tmp_path / "t.json").write_text('{"access_token": "secret-access"}')
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    assert "not a token set" in caplog.text and "secret" not in caplog.text


def test_a_refresh_without_a_new_refresh_token_keeps_the_old(
    fake: FakeIssuer, api: httpx.Client, store: MemoryTokenStore, clock: FrozenClock
) -> None:
    original = fake.issue

    def no_rotation() -> httpx.Response:
        body = original().json()
        del body["refresh_token"]
        return httpx.Response(200, json=body)

    fake.issue = no_rotation  # type: ignore[method-assign]
    clock.advance(TTL)
    api.get(API)
    saved = store.load()
    assert saved is not None and saved.refresh_token == "rt-0"  # RFC 6749 §6: MAY rotate


def test_without_expires_in_the_exp_claim_schedules_the_refresh(fake: FakeIssuer) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": T0 + 60}).encode()).rstrip(b"=")
    token = f"e30.{payload.decode()}.sig"
    parsed = TokenSet.from_response({"access_token": token, "refresh_token": "r"}, T0)
    assert parsed.expires_at == T0 + 60 and parsed.issued_at is None  # the server's clock
    odd = TokenSet.from_response({"access_token": "e30.e30.x", "refresh_token": "r"}, T0)
    assert odd.expires_at is None  # no exp: we learn about expiry from a 401
    for bad in (
        {},
        {"access_token": "a"},
        {"access_token": "a", "refresh_token": "r", "token_type": "DPoP"},
        [],
    ):
        with pytest.raises(ValueError):
            TokenSet.from_response(bad, T0)


# -- failures that are not a revocation -----------------------------------------------------
def test_a_failed_proactive_refresh_keeps_a_still_valid_token(
    fake: FakeIssuer, api: httpx.Client, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.refresh_status = 503
    clock.advance(TTL - 10)
    with caplog.at_level(logging.WARNING, logger="tokenward.client"):
        assert api.get(API).status_code == 200
    assert fake.api_calls[-1] == "Bearer at-0"
    assert "HTTP 503" in caplog.text
    clock.advance(10)  # now expired: the failure is the caller's to see
    with pytest.raises(httpx.HTTPStatusError):
        api.get(API)
    fake.refresh_status = None
    assert api.get(API).status_code == 200  # and the session survives the outage


def test_a_malformed_refresh_response_is_a_decoding_error(
    fake: FakeIssuer, api: httpx.Client, clock: FrozenClock
) -> None:
    fake.issue = lambda: httpx.Response(200, content=b"<html>")  # type: ignore[method-assign]
    clock.advance(TTL)
    with pytest.raises(httpx.DecodingError):
        api.get(API)


# -- OAuth clients, login, configuration ----------------------------------------------------
def test_oauth_clients_refresh_at_the_token_endpoint_with_a_form(
    fake: FakeIssuer, store: MemoryTokenStore, clock: FrozenClock
) -> None:
    public = make_auth(fake, store, clock, client_id="cli app")
    confidential = make_auth(fake, store, clock, client_id="svc:1", client_secret="s&cret")
    for auth in (public, confidential):
        clock.advance(TTL)
        with httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client:
            assert client.get(API).status_code == 200
    first, second = fake.refreshes
    assert first.url == ISSUER + "/oauth2/token"
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(first.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt-0"],
        "client_id": ["cli app"],
    }
    assert "client_id" not in parse_qs(second.content.decode())
    assert (
        second.headers["authorization"] == "Basic " + base64.b64encode(b"svc%3A1:s%26cret").decode()
    )


def test_login_saves_the_session(fake: FakeIssuer, clock: FrozenClock, tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    http = httpx.Client(transport=httpx.MockTransport(fake.handle))
    auth = TokenwardAuth.login(ISSUER, "alice", "pw", store=store, clock=clock, http=http)
    assert store.load() == fake.tokens()
    with httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client:
        assert client.get(API).status_code == 200
    with pytest.raises(AuthenticationFailed):
        TokenwardAuth.login(ISSUER, "alice", "wrong", store=store, clock=clock, http=http)


@pytest.mark.anyio
async def test_alogin(fake: FakeIssuer, clock: FrozenClock) -> None:
    store = MemoryTokenStore()
    ahttp = httpx.AsyncClient(transport=httpx.MockTransport(fake.ahandle))
    auth = await TokenwardAuth.alogin(ISSUER, "alice", "pw", store=store, clock=clock, ahttp=ahttp)
    assert store.load() == fake.tokens()
    async with aclient(fake, auth) as client:
        assert (await client.get(API)).status_code == 200


def test_login_errors_a_script_can_act_on(fake: FakeIssuer, clock: FrozenClock) -> None:
    def answer(status: int, **kw: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(status, **kw)))

    with pytest.raises(RateLimited) as limited:
        TokenwardAuth.login(
            ISSUER,
            "a",
            "b",
            store=MemoryTokenStore(),
            http=answer(429, headers={"retry-after": "7"}),
        )
    assert limited.value.retry_after == 7
    mfa = answer(200, json={"mfa_required": True, "mfa_token": "t"})
    with pytest.raises(AuthenticationFailed, match="second factor"):
        TokenwardAuth.login(ISSUER, "a", "b", store=MemoryTokenStore(), http=mfa)


@pytest.mark.parametrize(
    "url", ["http://auth.example", "ftp://127.0.0.1", "https://auth.example/?x=1"]
)
def test_the_issuer_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(ConfigError):
        TokenwardAuth(url, store=MemoryTokenStore())
    assert TokenwardAuth("http://127.0.0.1:8000/", store=MemoryTokenStore()).refresh_url == (
        "http://127.0.0.1:8000/api/v1/refresh"
    )


# -- secrets stay secret --------------------------------------------------------------------
def test_tokens_never_appear_in_reprs_or_logs(
    fake: FakeIssuer, clock: FrozenClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.access, fake.refresh = "ACCESS-SECRET-0", "REFRESH-SECRET-0"
    store = FileTokenStore(tmp_path / "tokens.json")
    store.save(TokenSet(fake.access, fake.refresh, T0 + TTL, T0))
    auth = make_auth(fake, store, clock, client_id="c", client_secret="CLIENT-SECRET")
    caplog.set_level(logging.DEBUG)
    with httpx.Client(transport=httpx.MockTransport(fake.handle), auth=auth) as client:
        clock.advance(TTL - 10)
        fake.refresh_status = 500
        client.get(API)  # a failed refresh, logged
        fake.refresh_status = None
        client.get(API)  # a successful one
        fake.revoke_session()
        with pytest.raises(SessionRevoked) as revoked:
            client.get(API)
    loaded = store.load()
    shown = " ".join(
        [
            caplog.text,
            repr(auth),
            repr(store),
            repr(loaded),
            str(loaded),
            str(revoked.value),
            repr(revoked.value),
        ]
    )
    assert "SECRET" not in shown and "at-" not in shown and "rt-" not in shown
    assert "expires_at" in repr(loaded)
