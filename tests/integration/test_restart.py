"""Crash safety of refresh rotation: kill -9 the real server in the middle of a burst.

Several sessions rotate their refresh tokens as fast as they can, each chain presenting the
newest token as soon as it arrives (SECURITY.md "Refresh tokens" 2: one atomic
compare-and-set plus the child's insert). The process is killed with SIGKILL while
requests are in flight, then restarted on the same SQLite file. Whatever the timing:

- no family ever has two ACTIVE refresh tokens;
- every refresh the client saw succeed (200) was committed before the answer: its token
  hash is in the database, ``active`` or ``used`` — none was lost;
- the restarted server accepts each chain's newest token that is still active.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from .test_serve import ServerProcess, admin_passwords, free_port, login, server_env

pytestmark = pytest.mark.slow  # two real server starts and a crash: about 10 s

CHAINS = 6
KILL_AFTER = 40  # successful refreshes across all chains before the kill
BURST_TIMEOUT = 30.0


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Burst:
    """Chains of refreshes that run until the server dies under them."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.committed: list[list[str]] = [[] for _ in range(CHAINS)]
        self.refused: list[tuple[int, str]] = []
        self.total = 0
        self.in_flight = 0
        self.in_flight_at_kill = 0

    async def chain(self, http: httpx.AsyncClient, index: int, token: str) -> None:
        while True:
            self.in_flight += 1
            try:
                r = await http.post("/api/v1/refresh", json={"refresh_token": token})
            except httpx.TransportError:
                return  # the server is gone
            finally:
                self.in_flight -= 1
            if r.status_code != 200:
                self.refused.append((r.status_code, r.text[:200]))
                return
            token = r.json()["refresh_token"]
            self.committed[index].append(token)
            self.total += 1
            if self.total == KILL_AFTER:
                self.in_flight_at_kill = self.in_flight
                self.server.proc.send_signal(signal.SIGKILL)  # mid-burst

    async def run(self, first_tokens: list[str]) -> None:
        limits = httpx.Limits(max_connections=CHAINS * 2)
        async with httpx.AsyncClient(base_url=self.server.base, timeout=10, limits=limits) as http:
            chains = (self.chain(http, i, t) for i, t in enumerate(first_tokens))
            await asyncio.wait_for(asyncio.gather(*chains), BURST_TIMEOUT)


def states(db: Path, hashes: list[str]) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        marks = ",".join("?" * len(hashes))
        rows = conn.execute(
            f"SELECT token_hash, state FROM refresh_tokens WHERE token_hash IN ({marks})", hashes
        ).fetchall()
    return dict(rows)


def test_kill_9_mid_refresh_burst_loses_no_committed_refresh(tmp_path: Path) -> None:
    data_dir, port, env = tmp_path / "data", free_port(), server_env(tmp_path)
    with ServerProcess(data_dir, port, env) as server:
        server.wait_ready()
        (password,) = admin_passwords(server)
        first = [login(server.base, "admin", password)["refresh_token"] for _ in range(CHAINS)]
        burst = Burst(server)
        asyncio.run(burst.run(first))
        assert server.proc.wait(15) == -signal.SIGKILL
    assert burst.refused == []  # no 4xx/5xx before the crash: chained tokens never collide
    assert burst.total >= KILL_AFTER
    assert burst.in_flight_at_kill >= 1  # the kill did land in the middle of requests

    with ServerProcess(data_dir, port, env) as again:
        again.wait_ready()  # the crashed database opens
        newest = [chain[-1] for chain in burst.committed if chain]
        alive = [
            t
            for t in newest
            if states(data_dir / "tokenward.db", [sha256(t)]) == {sha256(t): "active"}
        ]
        assert alive  # most chains' newest token survived as the active one
        for token in alive:
            r = httpx.post(again.base + "/api/v1/refresh", json={"refresh_token": token})
            assert r.status_code == 200, r.text
        again.stop_gracefully()

    with sqlite3.connect(f"file:{data_dir / 'tokenward.db'}?mode=ro", uri=True) as conn:
        doubled = conn.execute(
            "SELECT family_id, COUNT(*) FROM refresh_tokens WHERE state = 'active' "
            "GROUP BY family_id HAVING COUNT(*) > 1"
        ).fetchall()
        families = conn.execute(
            "SELECT COUNT(*), SUM(revoked_at IS NOT NULL) FROM families"
        ).fetchone()
    assert doubled == []
    assert families == (CHAINS, 0)  # nothing looked like reuse: no family was revoked

    seen = [sha256(t) for chain in burst.committed for t in chain]
    found = states(data_dir / "tokenward.db", seen)
    assert set(found) == set(seen)  # every 200 the client saw is in the database
    assert set(found.values()) <= {"active", "used"}
