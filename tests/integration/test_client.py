"""TokenwardAuth against the real server (`tokenward serve` in a subprocess).

The server keeps real time (its access tokens live the default 900 s); the client's clock is
a FrozenClock that we move forward, so the client believes its token is about to expire and
refreshes proactively — the refresh really goes to the server and really rotates. Refresh
calls are counted twice: on the wire (an event hook on the client's issuer connection) and
in the server's audit log (``refresh.rotated``, through the admin API).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock
from tokenward.client import FileTokenStore, SessionRevoked, TokenwardAuth

from .test_serve import ServerProcess, admin_passwords, free_port, login, server_env

pytestmark = pytest.mark.slow  # one real server for the module: a few seconds

ACCESS_TTL = 900  # the server's default
PASSWORD = "correct horse battery staple"


class Issuer:
    """The running server, an admin session for the admin API, and a refresh counter."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = server.base
        self.admin = {"Authorization": "Bearer " + self._admin_token(server)}
        self.refresh_calls = 0

    @staticmethod
    def _admin_token(server: ServerProcess) -> str:
        token: str = login(server.base, "admin", admin_passwords(server)[0])["access_token"]
        return token

    def create_user(self, username: str) -> str:
        body = {"username": username, "password": PASSWORD}
        r = httpx.post(self.base + "/api/v1/admin/users", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        user_id: str = r.json()["id"]
        return user_id

    def rotations(self, user_id: str) -> list[dict[str, Any]]:
        params = {"type": "refresh.rotated", "user_id": user_id, "limit": "1000"}
        r = httpx.get(self.base + "/api/v1/admin/audit", params=params, headers=self.admin)
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()
        return events

    def revoke(self, user_id: str) -> None:
        url = f"{self.base}/api/v1/admin/users/{user_id}/revoke-tokens"
        r = httpx.post(url, headers=self.admin)
        assert r.status_code == 200 and r.json()["sessions_ended"] == 1, r.text

    def count(self, request: httpx.Request) -> None:
        if request.url.path == "/api/v1/refresh":
            self.refresh_calls += 1

    async def acount(self, request: httpx.Request) -> None:
        self.count(request)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("client-server")
    env = server_env(tmp)
    with ServerProcess(tmp / "data", free_port(), env) as proc:
        yield proc.wait_ready()
        proc.stop_gracefully()


@pytest.fixture
def issuer(server: ServerProcess) -> Issuer:
    return Issuer(server)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


@pytest.mark.anyio
async def test_100_concurrent_requests_across_expiry_make_one_real_refresh(
    issuer: Issuer, clock: FrozenClock, tmp_path: Path
) -> None:
    user_id = issuer.create_user("alice")
    store = FileTokenStore(tmp_path / "alice.json")
    ahttp = httpx.AsyncClient(event_hooks={"request": [issuer.acount]})
    auth = await TokenwardAuth.alogin(
        issuer.base, "alice", PASSWORD, store=store, clock=clock, ahttp=ahttp
    )
    first = store.load()
    assert first is not None and first.expires_at == pytest.approx(clock.now + ACCESS_TTL)

    async with httpx.AsyncClient(base_url=issuer.base, auth=auth) as api:

        async def burst(n: int) -> list[int]:
            responses = await asyncio.gather(*(api.get("/api/v1/me") for _ in range(n)))
            return [r.status_code for r in responses]

        assert await burst(100) == [200] * 100
        assert issuer.refresh_calls == 0

        clock.advance(ACCESS_TTL - 10)  # the client now thinks 10 s are left (margin 30 s)
        assert await burst(100) == [200] * 100
        assert issuer.refresh_calls == 1
        assert len(issuer.rotations(user_id)) == 1  # the server rotated exactly once
        second = store.load()
        assert second is not None and second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token

        issuer.revoke(user_id)  # the admin ends every session of alice
        results = await asyncio.gather(
            *(api.get("/api/v1/me") for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, SessionRevoked) for r in results), results
        assert issuer.refresh_calls == 2  # one refused refresh, for all twenty
        with pytest.raises(SessionRevoked):
            await api.get("/api/v1/me")
        assert issuer.refresh_calls == 2  # known dead: no more calls
    assert len(issuer.rotations(user_id)) == 1
    await ahttp.aclose()


def test_threads_share_one_refresh_and_logout_all_ends_the_session(
    issuer: Issuer, clock: FrozenClock, tmp_path: Path
) -> None:
    user_id = issuer.create_user("bob")
    http = httpx.Client(event_hooks={"request": [issuer.count]})
    store = FileTokenStore(tmp_path / "bob.json")
    auth = TokenwardAuth.login(issuer.base, "bob", PASSWORD, store=store, clock=clock, http=http)
    clock.advance(ACCESS_TTL)  # expired, as far as the client knows
    gate, statuses = threading.Barrier(20), []

    with httpx.Client(base_url=issuer.base, auth=auth) as api:

        def call() -> None:
            gate.wait(10)
            statuses.append(api.get("/api/v1/me").status_code)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 20
        assert issuer.refresh_calls == 1 and len(issuer.rotations(user_id)) == 1

        assert api.post("/api/v1/logout-all").status_code == 204
        with pytest.raises(SessionRevoked):
            api.get("/api/v1/me")  # 401, then the refresh is refused: invalid_grant
        assert issuer.refresh_calls == 2
    http.close()
