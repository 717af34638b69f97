"""HTTP verify throughput: tokenward's forward-auth endpoint vs the seed's Express sketch.

tokenward answers ``GET /api/v1/verify`` (server/routes/verify.py: Bearer token -> the
server's Verifier -> 200 with X-Auth-* headers); the reference is the seed's protected
route, ``GET /protected`` in bench/express/verify-server.js (jsonwebtoken, HS256), run
with the sketch's string secret and with a KeyObject prepared once. One process each,
driven by ``wrk`` in rotated rounds (every target first, middle and last in turn); the
ratios are medians of per-round paired ratios.

Two scenarios:

- ``same``: every request carries the same token. tokenward answers it from its
  verified-token cache (expiry and revocation still checked on every hit), so the
  signature algorithm hardly matters there; jsonwebtoken has no cache.
- ``distinct``: each request takes the next of 8192 tokens, more than the verifier's
  cache holds (4096, first in first out), so every tokenward verification is cold:
  parse, signature, claims, cache insert and eviction. This is the honest figure.

Targets (``--targets``): ``tw`` ``tokenward serve`` with its defaults (ES256; uvicorn's
access log on), the headline; ``tw-hs256`` the same with TOKENWARD_SIGNING_ALG=HS256;
``tw-quiet`` uvicorn on the ASGI entry with ``--no-access-log`` (ES256); ``tw-fast`` and
``tw-fast-hs256``: ``tw-quiet`` with routes/verify.FastPath placed as proposed for
app.py (``fastpath_app`` below); ``express-str``; ``express-key``. Target: tokenward >=
1.5x Express with the prepared key. Besides rps, each run records the server process's
own CPU time per request (/proc), which other load on a shared machine moves far less.

    python bench/http_verify.py                 # 3 rounds x 10 s per target and scenario
    python bench/http_verify.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
from http_common import (
    EXPRESS_DIR,
    HOST,
    Bench,
    environment,
    fmt_rps,
    free_port,
    paired_ratios,
    parse_run_args,
    print_environment,
    print_ratio_header,
    process_cpu,
    ratio_line,
    round_orders,
    run_parser,
    tokenward_env,
)

from tokenward import Issuer
from tokenward.keystore import load_keyring, master_key

TARGET_RATIO = 1.5
DISTINCT_TOKENS = 8192  # > Verifier(cache_size=4096): every tokenward verify is cold
TTL = 3600
QUICK_ARGON2 = (8192, 1, 1)  # logins are not measured here
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"  # must be refused by every target
ASGI_APP = "tokenward.server.asgi:app"
FASTPATH_APP = "http_verify:fastpath_app"  # a factory, below
# name -> (label, TOKENWARD_SIGNING_ALG, "serve" or the ASGI app uvicorn runs without access log)
TOKENWARD = {
    "tw": ("tokenward serve (ES256, default; access log on)", "ES256", "serve"),
    "tw-hs256": ("tokenward serve (HS256; access log on)", "HS256", "serve"),
    "tw-quiet": ("tokenward asgi, uvicorn --no-access-log (ES256)", "ES256", ASGI_APP),
    # The proposal: FastPath where app.py would put it (drop these once app.py has it).
    "tw-fast": ("tw-quiet + FastPath (proposed) (ES256)", "ES256", FASTPATH_APP),
    "tw-fast-hs256": ("tw-quiet + FastPath (proposed) (HS256)", "HS256", FASTPATH_APP),
}
# name -> (label, SECRET_MODE of verify-server.js)
EXPRESS = {
    "express-str": ("Express + jsonwebtoken (HS256, string secret: the sketch)", "string"),
    "express-key": ("Express + jsonwebtoken (HS256, KeyObject secret)", "keyobject"),
}
LABELS = {name: spec[0] for name, spec in (*TOKENWARD.items(), *EXPRESS.items())}
RATIOS = [(name, "express-key") for name in TOKENWARD] + [("tw", "express-str")]


class Target:
    def __init__(self, name: str, url: str, pid: int, mint: Callable[[int], list[str]]) -> None:
        self.name, self.url, self.pid, self.mint = name, url, pid, mint


def _claims_shape() -> dict[str, object]:
    """What a tokenward login token carries besides the registered claims."""
    return {"roles": ["user"], "sid": secrets.token_hex(16)}


def start_tokenward(bench: Bench, name: str) -> Target:
    _, alg, launcher = TOKENWARD[name]
    data_dir = bench.tmp / name
    data_dir.mkdir(mode=0o700)
    env = tokenward_env(data_dir, QUICK_ARGON2, alg)
    port = free_port()
    base = f"http://{HOST}:{port}"
    if launcher == "serve":
        cmd = [sys.executable, "-m", "tokenward.cli", "serve", "--data-dir", str(data_dir)]
        cmd += ["--host", HOST, "--port", str(port)]
    else:
        env["TOKENWARD_ISSUER"] = base
        cmd = [sys.executable, "-m", "uvicorn", launcher, "--host", HOST, "--port", str(port)]
        cmd += ["--no-access-log", "--no-server-header", "--no-proxy-headers"]
        if launcher == FASTPATH_APP:
            cmd += ["--factory", "--app-dir", str(Path(__file__).resolve().parent)]
    log = bench.tmp / f"{name}.log"
    proc = bench.spawn(cmd, env, log)  # the Bench owns and stops it
    _wait(base + "/healthz", 200, proc, log)

    def mint(n: int) -> list[str]:
        # The server's own key ring, opened with the master key it wrote to its data dir.
        ring = load_keyring(data_dir, master_key(data_dir, create=False))
        issuer = Issuer(ring, issuer=base, default_ttl=TTL, max_ttl=TTL)
        sub = secrets.token_hex(16)
        return [issuer.issue(sub, base, claims=_claims_shape(), token_version=0) for _ in range(n)]

    return Target(name, base + "/api/v1/verify", proc.pid, mint)


def start_express(bench: Bench, name: str) -> Target:
    secret = secrets.token_urlsafe(48)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env.update(
        NODE_ENV="production",
        BENCH_SECRET=secret,
        SECRET_MODE=EXPRESS[name][1],
    )
    port = free_port()
    base = f"http://{HOST}:{port}"
    log = bench.tmp / f"{name}.log"
    cmd = ["node", "verify-server.js", str(port)]
    proc = bench.spawn(cmd, env, log, cwd=EXPRESS_DIR)
    _wait(base + "/protected", 401, proc, log)

    def mint(n: int) -> list[str]:
        now, sub = int(time.time()), secrets.token_hex(16)
        registered = {"iss": base, "sub": sub, "aud": base, "iat": now, "exp": now + TTL}
        return [
            pyjwt.encode(
                {
                    **registered,
                    "jti": secrets.token_urlsafe(16),
                    "client_id": "tokenward",
                    "tv": 0,
                    **_claims_shape(),
                },
                secret,
                algorithm="HS256",
            )
            for _ in range(n)
        ]

    return Target(name, base + "/protected", proc.pid, mint)


def fastpath_app() -> Any:
    """``uvicorn --factory``: the ASGI entry with routes/verify.FastPath inside the outer
    middleware, as the proposed ``TokenwardAPI.build_middleware_stack`` would build it."""
    from fastapi import FastAPI  # noqa: PLC0415

    from tokenward.server.app import create_app  # noqa: PLC0415
    from tokenward.server.middleware import docs_paths, outer_middleware  # noqa: PLC0415
    from tokenward.server.routes.verify import FastPath  # noqa: PLC0415
    from tokenward.server.settings import Settings  # noqa: PLC0415

    settings = Settings()
    app = create_app(settings, bootstrap_admin=True)
    stack = outer_middleware(
        FastPath(FastAPI.build_middleware_stack(app)), settings, docs_paths(app)
    )
    app.build_middleware_stack = lambda: stack  # type: ignore[method-assign]
    return app


def _wait(url: str, status: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited {proc.returncode}\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == status:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after 60 s: {url}")


def check(target: Target, token: str) -> None:
    """A target must accept its token and refuse a forged one, or nothing is measured."""
    import httpx  # noqa: PLC0415

    good = httpx.get(target.url, headers={"Authorization": f"Bearer {token}"})
    bad = httpx.get(target.url, headers={"Authorization": f"Bearer {BAD_TOKEN}"})
    if good.status_code != 200 or bad.status_code not in (401, 403):
        raise SystemExit(f"{target.name}: {good.status_code} for a good token, {bad.status_code}")


_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\nWRKJSON {"requests":%d,"duration_us":%d,"status":%d,' ..
    '"other":%d,"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
_CYCLE = r"""
local i = 0
function setup(thread) thread:set("i", math.random(#tokens)) end
function request()
  i = i % #tokens + 1
  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def lua(tokens: list[str]) -> str:
    """One token: a fixed header (cheapest for wrk); several: the next one per request."""
    if len(tokens) == 1:
        return f'wrk.headers["Authorization"] = "Bearer {tokens[0]}"\n' + _DONE
    return "tokens = {" + ",".join(json.dumps(t) for t in tokens) + "}\n" + _CYCLE + _DONE


def run_wrk(
    target: Target, script: Path, args: argparse.Namespace, secs: float
) -> dict[str, float]:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{secs:g}s"]
    cpu = process_cpu([target.pid])
    out = subprocess.run([*cmd, "-s", str(script), target.url], capture_output=True, text=True)
    cpu = process_cpu([target.pid]) - cpu
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), "")
    data = json.loads(line.removeprefix("WRKJSON ") or "{}")
    if out.returncode or not data or data["status"] or data["other"]:
        raise SystemExit(f"{target.name}: wrk failed or saw errors\n{out.stdout}{out.stderr}")
    seconds, requests = data["duration_us"] / 1e6, data["requests"]
    return {
        "rps": requests / seconds,
        "cpu_us": cpu / requests * 1e6,  # the server's own CPU per request: steadier than rps
        "p50": data["p50_us"],
        "p99": data["p99_us"],
    }


def measure(bench: Bench, targets: dict[str, Target], args: argparse.Namespace) -> None:
    for scenario, n in (("same", 1), ("distinct", DISTINCT_TOKENS)):
        scripts = {}
        for name, target in targets.items():
            tokens = target.mint(n)
            check(target, tokens[0])
            scripts[name] = bench.tmp / f"{name}-{scenario}.lua"
            scripts[name].write_text(lua(tokens))
            run_wrk(target, scripts[name], args, args.warmup)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for i, order in enumerate(round_orders(list(targets), args.rounds), 1):
            for name in order:
                results[name].append(run_wrk(targets[name], scripts[name], args, args.duration))
                print(
                    f"{scenario} round {i}: {name:12s} {results[name][-1]['rps']:8.0f} rps",
                    file=sys.stderr,
                )
        report(scenario, results)


def report(scenario: str, results: dict[str, list[dict[str, float]]]) -> None:
    print(f"## {scenario}: requests/s (all 200)\n")
    print("| target | median rps | per round | server CPU µs/request | p50 ms | p99 ms |")
    print("|---|---:|---|---:|---:|---:|")
    for name, runs in results.items():
        rps = [r["rps"] for r in runs]
        cpu, p50, p99 = (statistics.median(r[k] for r in runs) for k in ("cpu_us", "p50", "p99"))
        per = " / ".join(fmt_rps(v) for v in rps)
        print(
            f"| {LABELS[name]} | {fmt_rps(statistics.median(rps))} | {per} | {cpu:.0f} "
            f"| {p50 / 1000:.1f} | {p99 / 1000:.1f} |"
        )
    print(f"\n## {scenario}: ratios (rps, and requests per server CPU-second)\n")
    print_ratio_header()
    for a, b in RATIOS:
        if a in results and b in results:
            ratios = paired_ratios([r["rps"] for r in results[a]], [r["rps"] for r in results[b]])
            print(ratio_line(f"{a} / {b}, rps", ratios, TARGET_RATIO))
            per_cpu = [r["cpu_us"] for r in results[b]], [r["cpu_us"] for r in results[a]]
            print(ratio_line(f"{a} / {b}, per CPU-second", paired_ratios(*per_cpu), TARGET_RATIO))
    print()


def main() -> int:
    parser = run_parser(__doc__, warmup=2.0, connections=32, connections_help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--targets", default=",".join(LABELS), help=f"of {','.join(LABELS)}")
    args = parse_run_args(parser, quick=(1, 2.0, 1.0))
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    if any(n not in LABELS for n in names):
        parser.error(f"targets must be of {', '.join(LABELS)}")
    print("# HTTP verify: tokenward forward-auth vs the seed's Express protected route\n")
    print_environment(environment())
    print(
        f"wrk -t {args.threads} -c {args.connections} -d {args.duration:g}s per run, "
        f"{args.rounds} rounds, {args.warmup:g} s warm-up per target and scenario\n"
    )
    with Bench() as bench:
        targets = {n: (start_express if n in EXPRESS else start_tokenward)(bench, n) for n in names}
        measure(bench, targets, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
