"""TokenwardAuth: an ``httpx.Auth`` for sync and async clients of tokenward-protected APIs.

- Sends the access token as ``Authorization: Bearer`` (RFC 6750 §2.1).
- Refreshes before expiry: when the token expires within ``refresh_margin`` seconds by the
  injected clock. The expiry comes from ``expires_in`` (RFC 6749 §5.1), which is relative,
  so clock skew with the server does not matter.
- Single-flight: concurrent requests that need a refresh share ONE refresh call. Rotation
  makes this essential: a refresh token presented twice looks like a replay and the server
  revokes the whole session (SECURITY.md refresh rule 3, RFC 9700 §4.14.2).
- On 401, refreshes (unless another request already did) and retries once; never loops.
- Saves the rotated refresh token through the TokenStore before the request goes on.
- Raises ``SessionRevoked`` when the server refuses the refresh token (``invalid_grant``).

The refresh goes through a separate HTTP client, so it never re-enters this flow. It is
shielded from a caller's cancellation: a lost response would lose the session with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator
from contextlib import asynccontextmanager
from typing import Required, TypedDict, TypeVar, Unpack

import anyio
import anyio.to_thread
import httpx

from tokenward.clock import Clock, system_clock
from tokenward.errors import SessionRevoked
from tokenward.sdk import token_endpoint as wire
from tokenward.sdk.token_store import TokenSet, TokenStore

__all__ = ["TokenwardAuth"]

log = logging.getLogger("tokenward.client")
T = TypeVar("T")


def _digest(token: str) -> str:
    """We remember a refused refresh token by its hash only."""
    return hashlib.sha256(token.encode()).hexdigest()


def _on_asyncio() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop running: trio, through anyio
        return False


async def _shielded(work: Awaitable[T]) -> T:
    """Run ``work`` to completion even if the caller is cancelled meanwhile."""
    if _on_asyncio():  # anyio's shield does not stop asyncio's native task.cancel()
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # always retrieved
        return await asyncio.shield(task)
    with anyio.CancelScope(shield=True):  # trio (through anyio) honours this shield
        result = await work
    return result


class Options(TypedDict, total=False):
    """What ``login`` and ``alogin`` pass on to the constructor (first-party: no client_id)."""

    store: Required[TokenStore]
    refresh_margin: float
    clock: Clock
    http: httpx.Client | None
    ahttp: httpx.AsyncClient | None


class TokenwardAuth(httpx.Auth):
    """Bearer tokens from a TokenStore, refreshed before expiry, one refresh at a time.

    One instance may serve any number of threads and tasks (of one event loop) at once.
    """

    requires_request_body = True  # a request retried after a 401 is sent again, body and all

    def __init__(
        self,
        issuer_url: str,
        *,
        store: TokenStore,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_margin: float = 30.0,
        clock: Clock = system_clock,
        refresh_path: str | None = None,
        http: httpx.Client | None = None,
        ahttp: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer_url = wire.base_url(issuer_url)
        default = wire.OAUTH_TOKEN if client_id else wire.FIRST_PARTY_REFRESH
        self.refresh_url = self.issuer_url + (refresh_path or default)
        self.client_id, self._secret = client_id, client_secret
        self._store, self._margin, self._clock = store, refresh_margin, clock
        self._http, self._ahttp = http, ahttp
        self._own_http, self._own_ahttp = http is None, ahttp is None
        self._lock = threading.Lock()
        self._alock = anyio.Lock()
        self._tokens: TokenSet | None = None
        self._refused: str | None = None  # digest of the refresh token the server refused
        self._attempts = 0  # refresh calls made; lets waiters see that one failed meanwhile
        self._error: httpx.HTTPError | None = None  # why the last refresh call failed

    def __repr__(self) -> str:
        return f"TokenwardAuth({self.issuer_url!r}, client_id={self.client_id!r}, {self._store!r})"

    # -- sign in ----------------------------------------------------------------------------
    @classmethod
    def login(
        cls, issuer_url: str, username: str, password: str, **options: Unpack[Options]
    ) -> TokenwardAuth:
        """Password sign-in (POST /api/v1/login); the tokens are saved before this returns."""
        auth = cls(issuer_url, **options)
        started, request = auth._clock(), wire.login_request(auth.issuer_url, username, password)
        tokens = wire.signed_in(auth._sync_http().post(**request), started)
        auth._store.save(tokens)
        auth._signed_in(tokens)
        return auth

    @classmethod
    async def alogin(
        cls, issuer_url: str, username: str, password: str, **options: Unpack[Options]
    ) -> TokenwardAuth:
        """``login`` for async code."""
        auth = cls(issuer_url, **options)
        started, request = auth._clock(), wire.login_request(auth.issuer_url, username, password)
        tokens = wire.signed_in(await auth._async_http().post(**request), started)
        await anyio.to_thread.run_sync(auth._store.save, tokens)
        auth._signed_in(tokens)
        return auth

    def _signed_in(self, tokens: TokenSet) -> None:
        self._tokens, self._refused, self._error = tokens, None, None

    # -- the httpx flows ----------------------------------------------------------------------
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        tokens = self._tokens
        if tokens is None or self._expiring(tokens):
            tokens = self._settle(tokens, force=False)
        response = yield wire.bearer(request, tokens.access_token)
        if wire.rejected(response):  # RFC 6750 §3.1 invalid_token: refresh, retry once
            response.read()  # frees the connection while we refresh
            yield wire.bearer(request, self._settle(tokens, force=True).access_token)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        tokens = self._tokens
        if tokens is None or self._expiring(tokens):
            tokens = await _shielded(self._asettle(tokens, force=False))
        response = yield wire.bearer(request, tokens.access_token)
        if wire.rejected(response):
            await response.aread()
            retry = await _shielded(self._asettle(tokens, force=True))
            yield wire.bearer(request, retry.access_token)

    # -- deciding, under the lock -------------------------------------------------------------
    def _expiring(self, tokens: TokenSet) -> bool:
        if tokens.expires_at is None:
            return False  # the server did not say: we learn it from a 401
        margin = self._margin
        if tokens.issued_at is not None:  # never more than half the lifetime: no refresh storm
            margin = max(0.0, min(margin, (tokens.expires_at - tokens.issued_at) / 2))
        return self._clock() >= tokens.expires_at - margin

    def _expired(self, tokens: TokenSet) -> bool:
        return tokens.expires_at is not None and self._clock() >= tokens.expires_at

    def _current(self) -> TokenSet:
        assert self._tokens is not None
        return self._tokens

    def _adopt(self, loaded: TokenSet | None) -> None:
        if loaded is None:
            raise SessionRevoked("no session is stored: log in first")
        if self._refused == _digest(loaded.refresh_token):
            raise SessionRevoked("the server refused this session's refresh token: log in again")
        self._tokens = loaded

    def _plan(self, stale: TokenSet | None, seen: int, force: bool) -> TokenSet | None:
        """The token set to use, or None when this caller must refresh."""
        current = self._current()
        if force:
            if stale is None or current.access_token != stale.access_token:
                return current  # another request refreshed since we sent ours
        elif not self._expiring(current):
            return current
        if self._attempts != seen and self._error is not None:
            return self._fallback(self._error, current, force)  # one attempt per wave of waiters
        return None

    def _fallback(self, error: httpx.HTTPError, current: TokenSet, force: bool) -> TokenSet:
        """A refresh failed for a passing reason: keep a still-valid token, else raise."""
        if force or self._expired(current):
            raise error
        log.warning("token refresh failed (%s); keeping the current token", wire.describe(error))
        return current

    def _accept(self, response: httpx.Response, current: TokenSet, started: float) -> TokenSet:
        try:
            tokens = wire.refreshed(response, current, started)
        except SessionRevoked:
            self._refused, self._tokens = _digest(current.refresh_token), None
            raise
        self._tokens, self._error = tokens, None
        return tokens

    # -- sync ---------------------------------------------------------------------------------
    def _settle(self, stale: TokenSet | None, *, force: bool) -> TokenSet:
        seen = self._attempts
        with self._lock:
            if self._tokens is None:
                self._adopt(self._store.load())
            plan = self._plan(stale, seen, force)
            return plan if plan is not None else self._refresh(force)

    def _refresh(self, force: bool) -> TokenSet:
        current, started, http = self._current(), self._clock(), self._sync_http()
        self._attempts += 1
        try:
            response = http.send(self._refresh_request(http, current))
            tokens = self._accept(response, current, started)
        except httpx.HTTPError as exc:
            self._error = exc
            return self._fallback(exc, current, force)
        self._store.save(tokens)  # before anything else: the old refresh token is spent
        log.debug("access token refreshed")
        return tokens

    # -- async --------------------------------------------------------------------------------
    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """The anyio lock queues our tasks; the thread lock keeps sync callers out too."""
        async with self._alock:
            if not self._lock.acquire(blocking=False):
                await anyio.to_thread.run_sync(self._lock.acquire)
            try:
                yield
            finally:
                self._lock.release()

    async def _asettle(self, stale: TokenSet | None, *, force: bool) -> TokenSet:
        seen = self._attempts
        async with self._exclusive():
            if self._tokens is None:
                self._adopt(await anyio.to_thread.run_sync(self._store.load))
            plan = self._plan(stale, seen, force)
            return plan if plan is not None else await self._arefresh(force)

    async def _arefresh(self, force: bool) -> TokenSet:
        current, started, http = self._current(), self._clock(), self._async_http()
        self._attempts += 1
        try:
            response = await http.send(self._refresh_request(http, current))
            tokens = self._accept(response, current, started)
        except httpx.HTTPError as exc:
            self._error = exc
            return self._fallback(exc, current, force)
        await anyio.to_thread.run_sync(self._store.save, tokens)
        log.debug("access token refreshed")
        return tokens

    # -- HTTP clients for the issuer ----------------------------------------------------------
    def _refresh_request(
        self, http: httpx.Client | httpx.AsyncClient, current: TokenSet
    ) -> httpx.Request:
        return wire.refresh_request(
            http, self.refresh_url, current.refresh_token, self.client_id, self._secret
        )

    def _sync_http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=wire.TIMEOUT, follow_redirects=False)
        return self._http

    def _async_http(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(timeout=wire.TIMEOUT, follow_redirects=False)
        return self._ahttp

    def close(self) -> None:
        """Close the sync HTTP client to the issuer, if we created it."""
        if self._own_http and self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        """Close the async HTTP client to the issuer, if we created it."""
        if self._own_ahttp and self._ahttp is not None:
            await self._ahttp.aclose()
