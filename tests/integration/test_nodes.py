"""Scale-out with real processes: `tokenward serve` nodes on one PostgreSQL and one Redis.

Needs TOKENWARD_TEST_POSTGRES_URL and TOKENWARD_TEST_REDIS_URL (skipped without them). The
module creates a PostgreSQL database and a Redis prefix of its own; the Redis fault test
runs a private redis-server and the PostgreSQL fault test a TCP proxy it can cut, so the
machine's shared servers are never disturbed. Every wait is a bounded poll of another
process; no test waits for a token to expire (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tokenward import RemoteJWKS, RevocationView, Verifier
from tokenward.errors import InvalidToken
from tokenward.sdk.feed import RevocationFeed

from .nodes import (
    ADMIN_PASSWORD,
    CHAINS,
    ISSUER,
    KILL_AFTER,
    Deployment,
    Storm,
    TcpProxy,
    bearer,
    database,
    dsn,
    fetch,
    kids,
    login,
    master_key,
    me,
    pg_address,
    refresh,
    run,
    sha256,
    until,
    urls_or_skip,
)
from .test_redis import PrivateRedis
from .test_serve import ServerProcess

pytestmark = pytest.mark.slow  # real processes

PUSHED_WITHIN = 3.0  # seconds for a revocation or a key change to reach the other node
ROUNDS = 20


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    pg, redis = urls_or_skip()
    with database(pg) as url:
        prefix = f"tw-nodes-{secrets.token_hex(6)}"
        yield Deployment(tmp_path_factory.mktemp("nodes"), url, redis, prefix, master_key())


def problem_error(r: httpx.Response) -> str:
    error: str = r.json().get("error", "")
    return error


# -- 1. refresh-token reuse across nodes ---------------------------------------------------
def test_reuse_on_a_revokes_the_family_on_b(deployment: Deployment) -> None:
    with deployment.nodes() as (a, b):
        first = login(a.base)
        r = refresh(b.base, first["refresh_token"])
        assert r.status_code == 200, r.text
        second = r.json()
        assert me(b.base, second["access_token"]) == 200

        reused = refresh(a.base, first["refresh_token"])  # the old token, on the other node
        assert reused.status_code == 400 and problem_error(reused) == "invalid_grant", reused.text
        newest = refresh(b.base, second["refresh_token"])
        assert newest.status_code == 400 and problem_error(newest) == "invalid_grant", newest.text
        took = until(lambda: me(b.base, second["access_token"]) == 401, PUSHED_WITHIN)
        assert took is not None, "B still accepts an access token of the revoked family"


# -- 2. a logout on B reaches an SDK verifier following A ---------------------------------
def _rejects(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except InvalidToken:
        return True
    return False


def _logout_round(a: ServerProcess, b: ServerProcess, verifier: Verifier) -> tuple[float, float]:
    """Seconds from the logout's response, and from its request, to the first rejection."""
    token = login(a.base)["access_token"]
    assert not _rejects(verifier, token)
    sent = time.monotonic()
    r = httpx.post(b.base + "/api/v1/logout", headers=bearer(token))
    answered = time.monotonic()
    assert r.status_code == 204, r.text
    took = until(lambda: _rejects(verifier, token), 5.0, step=0.001)
    assert took is not None, "the verifier never heard of the logout"
    return took, answered - sent + took


def test_logout_on_b_reaches_an_sdk_verifier_within_a_second(
    deployment: Deployment, record_property: Callable[[str, object], None]
) -> None:
    with deployment.nodes() as (a, b):
        view = RevocationView()
        verifier = Verifier(
            RemoteJWKS(a.base + "/.well-known/jwks.json"),
            issuer=ISSUER,
            audience=ISSUER,
            revocation=view,
        )
        feed = RevocationFeed.redis(
            deployment.redis_url,
            view,
            channel=f"{deployment.prefix}:revocations",
            catch_up_url=a.base + "/api/v1/revocations",
        )
        feed.start_thread(ready_timeout=10)
        try:
            assert feed.ready.is_set(), "the SDK feed never reached the issuer"
            rounds = [_logout_round(a, b, verifier) for _ in range(ROUNDS)]
        finally:
            feed.stop()
    for name, delays in zip(("after_response", "after_request"), zip(*rounds), strict=True):
        p50 = statistics.median(delays)
        p99 = statistics.quantiles(delays, n=100, method="inclusive")[98]
        print(
            f"\nlogout on B -> SDK rejects ({name}): p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"
        )
        record_property(f"revocation_{name}_p50_ms", round(p50 * 1000, 3))
        record_property(f"revocation_{name}_p99_ms", round(p99 * 1000, 3))
        assert p99 <= 1.0


# -- 3. rate limits shared through Redis --------------------------------------------------
def test_failed_logins_count_on_both_nodes(deployment: Deployment) -> None:
    limits = {"TOKENWARD_LOGIN_RATE_PER_ACCOUNT": "6/minute", "TOKENWARD_LOCKOUT_THRESHOLD": "100"}
    with deployment.nodes(**limits) as (a, b):
        admin = login(a.base)["access_token"]
        name = f"limited-{secrets.token_hex(4)}"  # its own counter: no other test touches it
        user = {"username": name, "password": "a long enough password", "roles": []}
        created = httpx.post(a.base + "/api/v1/admin/users", json=user, headers=bearer(admin))
        assert created.status_code == 201, created.text
        wrong = {"username": name, "password": "not the password"}
        codes = [
            httpx.post(node.base + "/api/v1/login", json=wrong).status_code
            for node in (a, a, a, b, b, b)
        ]
        assert codes == [401] * 6
        for node in (a, b):
            r = httpx.post(node.base + "/api/v1/login", json=wrong)
            assert r.status_code == 429, r.text
            assert "retry-after" in r.headers


# -- 4. key rotation pushed between nodes -------------------------------------------------
def test_a_key_rotated_on_a_is_published_and_accepted_by_b(deployment: Deployment) -> None:
    with deployment.nodes() as (a, b):
        admin = login(a.base)["access_token"]
        r = httpx.post(a.base + "/api/v1/admin/keys/rotate", headers=bearer(admin))
        assert r.status_code == 200, r.text
        kid = r.json()["kid"]
        took = until(lambda: kid in kids(b.base), PUSHED_WITHIN)
        assert took is not None, "A's new key never reached B's JWKS"
        token = login(a.base)["access_token"]
        assert jwt.get_unverified_header(token)["kid"] == kid
        assert me(b.base, token) == 200


# -- 5. one refresh token, 50 concurrent presentations on two nodes ------------------------
async def _storm(bases: list[str], token: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=count)) as http:
        requests = (
            http.post(bases[i % 2] + "/api/v1/refresh", json={"refresh_token": token})
            for i in range(count)
        )
        return await asyncio.gather(*requests)


def test_fifty_concurrent_refreshes_over_two_nodes_one_wins(deployment: Deployment) -> None:
    with deployment.nodes() as (a, b):
        token = login(a.base)["refresh_token"]
        answers = run(_storm([a.base, b.base], token, 50))
        codes = sorted(r.status_code for r in answers)
        assert codes.count(200) == 1, codes
        assert set(codes) == {200, 400}, [
            (r.status_code, r.text) for r in answers if r.status_code >= 500
        ]
        assert {problem_error(r) for r in answers if r.status_code == 400} == {"invalid_grant"}


# -- 6a. kill -9 one node in a refresh storm spread over both ------------------------------
def test_kill_9_one_node_mid_storm_loses_no_committed_refresh(deployment: Deployment) -> None:
    with deployment.nodes() as (a, b):
        storm = Storm(a, b)
        run(storm.run([login(b.base)["refresh_token"] for _ in range(CHAINS)]))
        assert a.proc.wait(15) == -signal.SIGKILL
        assert storm.refused == []  # no 4xx/5xx: chained tokens never collide
        assert len(storm.committed) >= KILL_AFTER and storm.in_flight_at_kill >= 1
        assert httpx.get(b.base + "/readyz").status_code == 200  # B goes on
    url = deployment.database_url
    doubled = run(
        fetch(
            url,
            "SELECT family_id, COUNT(*) FROM refresh_tokens WHERE state = 'active' "
            "GROUP BY family_id HAVING COUNT(*) > 1",
        )
    )
    assert doubled == []
    hashes = [sha256(t) for t in storm.committed]
    rows = run(
        fetch(
            url, "SELECT token_hash, state FROM refresh_tokens WHERE token_hash = ANY($1)", hashes
        )
    )
    found = {row["token_hash"]: row["state"] for row in rows}
    assert set(found) == set(hashes)  # every 200 a client saw is in PostgreSQL
    assert set(found.values()) <= {"active", "used"}


# -- 6b. Redis stopped and restarted -------------------------------------------------------
def test_nodes_work_without_redis_and_resubscribe_when_it_returns(
    deployment: Deployment, tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("the Redis fault test needs redis-server and redis-cli")
    redis = PrivateRedis(tmp_path)  # never the machine's shared Redis
    redis.start()
    try:
        # polling the event table only every 60 s: a fast delivery is the Redis push
        over = {"TOKENWARD_REDIS_URL": redis.url, "TOKENWARD_REVOCATION_POLL_SECONDS": "60"}
        with deployment.nodes(**over) as (a, b):
            kept = login(a.base)
            assert _logout_reaches(a, b, PUSHED_WITHIN)  # pushed while Redis is up
            redis.stop()
            during = login(b.base)
            r = refresh(a.base, kept["refresh_token"])
            assert r.status_code == 200, r.text
            assert me(a.base, r.json()["access_token"]) == 200
            assert me(b.base, during["access_token"]) == 200
            assert (
                httpx.post(
                    b.base + "/api/v1/logout", headers=bearer(during["access_token"])
                ).status_code
                == 204
            )
            assert me(b.base, during["access_token"]) == 401
            redis.start()
            # A resubscribes (with backoff) and catches up from its cursor: nothing lost
            assert until(lambda: me(a.base, during["access_token"]) == 401, 20, 0.05) is not None
            assert until(lambda: _logout_reaches(a, b, 1.0), 20, 0.1) is not None
    finally:
        redis.stop()


def _logout_reaches(a: ServerProcess, b: ServerProcess, within: float) -> bool:
    token = login(a.base)["access_token"]
    assert me(a.base, token) == 200
    assert httpx.post(b.base + "/api/v1/logout", headers=bearer(token)).status_code == 204
    return until(lambda: me(a.base, token) == 401, within) is not None


# -- 6c. PostgreSQL unreachable ------------------------------------------------------------
def test_a_node_cut_off_from_postgres_answers_503_and_recovers(deployment: Deployment) -> None:
    base_pg, _ = urls_or_skip()
    proxy = TcpProxy(pg_address(base_pg)).open()
    try:
        through = dsn(deployment.database_url, port=proxy.port)
        with deployment.nodes(1, TOKENWARD_DATABASE_URL=through) as (node,):
            assert login(node.base)["access_token"]
            families = _families(deployment.database_url)
            proxy.cut()
            ready = httpx.get(node.base + "/readyz", timeout=15)
            assert ready.status_code == 503, ready.text
            assert ready.headers["content-type"] == "application/problem+json"
            r = httpx.post(
                node.base + "/api/v1/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=30,
            )
            assert _families(deployment.database_url) == families  # nothing half-written
            proxy.open()
            back = until(lambda: httpx.get(node.base + "/readyz").status_code == 200, 20, 0.1)
            assert back is not None, "the node did not recover once PostgreSQL came back"
            assert login(node.base)["access_token"]  # without a restart
            # last, so the checks above run whatever this answer was; a 500 is a server bug
            logged = [line for line in node.lines if "Error" in line or "error" in line]
            assert r.status_code == 503, (r.status_code, r.text, logged[-5:])
            assert r.headers["content-type"] == "application/problem+json"
            assert problem_error(r) == "temporarily_unavailable", r.text
    finally:
        proxy.close()


def _families(url: str) -> int:
    rows = run(fetch(url, "SELECT COUNT(*) AS n FROM families"))
    return int(rows[0]["n"])
