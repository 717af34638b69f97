"""What protecting a FastAPI endpoint with tokenward costs per request, side by side.

The same FastAPI app for every case — one route, ``GET /``, differing only in the
endpoint's dependency (one route each, so routing costs the same: with several routes the
later ones pay for matching the earlier) — in process, called directly through ASGI (no
sockets, no HTTP parsing: that cost is the same with or without tokenward and would only
dilute the ratio). Every request carries the same ``Authorization: Bearer`` header:

* bare           an ``async def`` endpoint returning a small dict
* noop-dep       the same with one ``Depends`` on an ``async def`` that does nothing:
                 what FastAPI charges for any dependency (the floor for ``require``)
* noop-security  the same no-op as an ``HTTPBearer`` subclass (a ``SecurityBase``, which
                 FastAPI documents itself): the floor ``require`` would have as one
* httpbearer     FastAPI's own ``Depends(HTTPBearer(auto_error=False))``, which only
                 parses the header (into a pydantic ``HTTPAuthorizationCredentials``)
* require        the same with ``Depends(require())`` (ES256 token,
                 the Verifier's default verified-token cache: the steady state of a client
                 that reuses its access token for its lifetime)
* require-scope  ``Depends(require(scopes=["read"]))``: plus a scope check
* require-cold   ``Depends(require())`` with ``Verifier(cache_size=0)``: a full ES256
                 verification on every request (every request a new token)
* middleware     the pure ASGI ``TokenwardMiddleware`` (cached) around the bare app
* pyjwt-dep      for reference: the hand-written FastAPI dependency many projects use,
                 ``HTTPBearer`` + ``jwt.decode`` (ES256, iss/aud/exp checked; PyJWT has no
                 cache, so compare it with require-cold)

Every case is checked before timing (200 with the right body; 401 without a token and
with a bad one). Cases are interleaved in shuffled order in many short rounds of batches
sized to ~20 ms; batches are timed in thread CPU time (the event loop runs in this
thread). Reported: median µs per request and the median of per-round paired ratios to
``bare`` with their interquartile range. Target: require ≤ 1.3× bare.

    python bench/middleware_overhead.py            # ~20 seconds
    python bench/middleware_overhead.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Annotated, Any

import jwt as pyjwt
import orjson
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from tokenward import Issuer, KeyRing, Principal, Verifier
from tokenward.sdk.asgi import TokenwardMiddleware
from tokenward.sdk.fastapi import install, require

ISS, AUD = "https://auth.example", "https://api.example"
TARGET = 1.3

Call = Callable[[], Awaitable[tuple[int, bytes]]]
bearer = HTTPBearer(auto_error=False)  # module level: FastAPI resolves annotations here


class NoopScheme(HTTPBearer):
    """A security dependency that does nothing (FastAPI documents it as a Bearer scheme)."""

    async def __call__(self, conn: HTTPConnection) -> None:  # type: ignore[override]
        return None


noop_scheme = NoopScheme()


def endpoints(pyjwt_key: Any) -> dict[str, Callable[..., Awaitable[dict[str, str]]]]:
    """One endpoint per case, all answering {"sub": "alice"}."""

    async def pyjwt_user(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        if creds is None:
            raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
        try:
            return pyjwt.decode(
                creds.credentials, pyjwt_key, algorithms=["ES256"], audience=AUD, issuer=ISS
            )
        except pyjwt.InvalidTokenError:
            raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"}) from None

    async def bare() -> dict[str, str]:
        return {"sub": "alice"}

    async def nothing(conn: HTTPConnection) -> None:
        return None

    async def noop(_: None = Depends(nothing)) -> dict[str, str]:
        return {"sub": "alice"}

    async def noop_security(_: Annotated[None, Depends(noop_scheme)]) -> dict[str, str]:
        return {"sub": "alice"}

    async def httpbearer(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, str]:
        return {"sub": "alice"}

    async def protected(who: Annotated[Principal, Depends(require())]) -> dict[str, str]:
        return {"sub": who.subject}

    async def scoped(
        who: Annotated[Principal, Depends(require(scopes=["read"]))],
    ) -> dict[str, str]:
        return {"sub": who.subject}

    async def with_pyjwt(claims: dict[str, Any] = Depends(pyjwt_user)) -> dict[str, str]:  # noqa: B008
        return {"sub": claims["sub"]}

    return {
        "bare": bare,
        "noop-dep": noop,
        "noop-security": noop_security,
        "httpbearer": httpbearer,
        "require": protected,
        "require-scope": scoped,
        "pyjwt": with_pyjwt,
    }


def build_app(verifier: Verifier, endpoint: Callable[..., Any]) -> FastAPI:
    """The same app for every case: one route, GET /, so routing costs the same."""
    app = FastAPI()
    install(app, verifier)
    app.get("/")(endpoint)
    return app


def asgi_call(app: Any, path: str, authorization: str | None) -> Call:
    headers = [(b"host", b"api.example")]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": list(headers),
            "client": ("127.0.0.1", 50000),
            "server": ("api.example", 443),
        }
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return request

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["body"] += message.get("body", b"")

        await app(scope, receive, send)
        return out["status"], out["body"]

    return call


@dataclass
class Case:
    name: str
    call: Call
    n: int = 1
    samples: list[float] = field(default_factory=list)  # µs per request, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


async def batch(call: Call, n: int) -> float:
    gc.disable()
    try:
        t0 = time.thread_time()
        for _ in range(n):
            await call()
        return time.thread_time() - t0
    finally:
        gc.enable()


async def calibrate(case: Case, target: float) -> None:
    n = 1
    while (t := await batch(case.call, n)) < target / 5:
        n *= 4
    case.n = max(1, round(n * target / t))


async def expect(call: Call, status: int, what: str) -> None:
    got, body = await call()
    if got != status or (status == 200 and orjson.loads(body) != {"sub": "alice"}):
        raise SystemExit(f"check failed: {what}: {got} {body!r}")


def build_apps(ring: KeyRing) -> dict[str, Any]:
    """Every case's ASGI app by name, in table order (also served by uvicorn in
    middleware_overhead_http.py); tokens signed by ``ring``'s ES256 key pass."""
    cached = Verifier(ring, issuer=ISS, audience=AUD)
    cold = Verifier(ring, issuer=ISS, audience=AUD, cache_size=0)
    ep = endpoints(pyjwt.PyJWK(ring.jwks()["keys"][0]).key)
    apps: dict[str, Any] = {name: build_app(cached, fn) for name, fn in ep.items()}
    apps["require-cold"] = build_app(cold, ep["require"])
    apps["middleware"] = TokenwardMiddleware(apps["bare"], cached, required=True)
    apps["pyjwt-dep"] = apps.pop("pyjwt")  # re-added: the reference comes last in the table
    return apps


def build_cases() -> list[Case]:
    ring = KeyRing()
    ring.generate("ES256", time.time())
    token = Issuer(ring, issuer=ISS).issue("alice", AUD, scope="read write")
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    apps = build_apps(ring)
    auth = f"Bearer {token}"
    cases = [Case(name, asgi_call(app, "/", auth)) for name, app in apps.items()]
    checks = [
        (asgi_call(apps["require"], "/", None), 401, "require without a token"),
        (asgi_call(apps["require"], "/", f"Bearer {bad}"), 401, "require, bad signature"),
        (asgi_call(apps["require-cold"], "/", f"Bearer {bad}"), 401, "cold, bad signature"),
        (asgi_call(apps["middleware"], "/", None), 401, "middleware without a token"),
        (asgi_call(apps["pyjwt-dep"], "/", f"Bearer {bad}"), 401, "pyjwt, bad signature"),
    ]

    async def check_all() -> None:
        for c in cases:
            await expect(c.call, 200, c.name)
        for call, status, what in checks:
            await expect(call, status, what)

    asyncio.run(check_all())
    return cases


async def run(cases: list[Case], rounds: int, target: float) -> None:
    for c in cases:
        await calibrate(c, target)
    rng = random.Random(0)
    order = list(cases)
    for _ in range(rounds):
        rng.shuffle(order)
        for c in order:
            c.samples.append(await batch(c.call, c.n) / c.n * 1e6)
        gc.collect()


def report(cases: list[Case], rounds: int, wall: float) -> str:
    bare = cases[0]
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"fastapi {version('fastapi')}, starlette {version('starlette')}, "
        f"pyjwt {version('pyjwt')}; thread CPU time, {rounds} rounds, wall {wall:.0f} s",
        "",
        "| case | µs/request | × bare (IQR) |",
        "|---|---:|---:|",
    ]
    for c in cases:
        ratios = [a / b for a, b in zip(c.samples, bare.samples, strict=True)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0]] * 3
        lines.append(
            f"| {c.name} | {c.median:.1f} | {statistics.median(ratios):.2f}× "
            f"({q[0]:.2f}–{q[2]:.2f}) |"
        )
    by = {c.name: c for c in cases}

    def paired(a: Case, b: Case, op: Callable[[float, float], float]) -> float:
        return statistics.median(op(x, y) for x, y in zip(a.samples, b.samples, strict=True))

    ratio = paired(by["require"], bare, lambda x, y: x / y)
    floor = paired(by["noop-dep"], bare, lambda x, y: x / y)
    own = paired(by["require"], by["noop-dep"], lambda x, y: x - y)
    guard = paired(by["middleware"], bare, lambda x, y: x - y)
    verdict = "PASS" if ratio <= TARGET else "MISS"
    lines += [
        "",
        f"Target require ≤ {TARGET}× bare: {ratio:.2f}× — {verdict}. "
        f"FastAPI's floor for any dependency (noop-dep): {floor:.2f}×; "
        f"require costs {own:.1f} µs/request above it "
        f"(the same verification as ASGI middleware: {guard:.1f} µs/request above bare).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (10 if args.quick else 60)
    target = 0.005 if args.quick else 0.02
    t0 = time.perf_counter()
    cases = build_cases()
    asyncio.run(run(cases, rounds, target))
    print(report(cases, rounds, time.perf_counter() - t0))
    sys.exit(0)


if __name__ == "__main__":
    main()
