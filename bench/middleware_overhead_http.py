"""The FastAPI overhead cases of middleware_overhead.py as they run for real: over HTTP.

SECONDARY figure. The headline for the target "require ≤ 1.3× bare" stays
``bench/middleware_overhead.py`` (in process, straight through ASGI, thread CPU time).
Here each case's one-route app — built by that script's ``build_apps``, unchanged — is
served by its own uvicorn process, started once with the options of a production run
(``--http httptools --loop uvloop --no-access-log --log-level warning``), and driven by
``wrk`` with the same ES256 ``Authorization: Bearer`` token on every request. Socket I/O
and HTTP parsing are now part of every request, with or without tokenward.

Cases (``--cases``; any case name of middleware_overhead.py): by default ``bare``,
``noop-dep`` (FastAPI's floor for any dependency), ``require`` (``Depends(require())``,
cached verifier) and ``middleware`` (the pure ASGI ``TokenwardMiddleware``). Each server
is checked before timing: 200 and ``{"sub": "alice"}`` with the token; the protected
cases also 401 without a token and with a bad signature (``bare`` and ``noop-dep`` are
unprotected and answer 200 without one). Cases run one at a time in rounds whose order
rotates (http_common.round_orders). Reported: median requests/s, the server process's
own CPU per request (/proc), and medians of per-round paired ratios to ``bare`` — time
per request (bare rps / case rps) and server CPU per request. The server is saturated
(one core busy), so the two agree; both cases of a round share the machine's noise. To
cut the rest of it, every server runs with PYTHONHASHSEED=0 and, unless ``--no-pin``,
the servers are pinned to the first CPU and wrk to the others.

    python bench/middleware_overhead_http.py             # 24 rounds x 1 s, ~2 minutes
    python bench/middleware_overhead_http.py --quick     # smoke run
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from http_common import (
    BENCH_DIR,
    HOST,
    Bench,
    Server,
    WrkResult,
    environment,
    free_port,
    get_script,
    paired_ratios,
    parse_run_args,
    print_environment,
    print_rps_table,
    quartiles,
    round_orders,
    run_parser,
    wrk,
)
from middleware_overhead import AUD, ISS, TARGET, build_apps

from tokenward import Issuer, KeyRing
from tokenward.keystore import load_keyring, master_key, save_keyring

CASE_ENV, KEYS_ENV = "BENCH_MW_CASE", "BENCH_MW_KEYS"
UVICORN_OPTIONS = ["--http", "httptools", "--loop", "uvloop", "--lifespan", "on"]
UVICORN_OPTIONS += ["--no-access-log", "--log-level", "warning"]
DEFAULT_CASES = "bare,noop-dep,require,middleware"
PROTECTED = {"require", "require-scope", "require-cold", "middleware", "pyjwt-dep"}
LABELS = {
    "bare": "bare: no dependency",
    "noop-dep": "noop-dep: one no-op `Depends`",
    "noop-security": "noop-security: no-op `HTTPBearer` subclass",
    "httpbearer": "httpbearer: `HTTPBearer(auto_error=False)`",
    "require": "require: `Depends(require())`, cached",
    "require-scope": 'require-scope: `require(scopes=["read"])`',
    "require-cold": "require-cold: `require()`, `cache_size=0`",
    "middleware": "middleware: `TokenwardMiddleware` (ASGI), cached",
    "pyjwt-dep": "pyjwt-dep: `HTTPBearer` + `jwt.decode`",
}


def app() -> Any:
    """``uvicorn --factory``: the app of case $BENCH_MW_CASE, keys from $BENCH_MW_KEYS."""
    keys = Path(os.environ[KEYS_ENV])
    return build_apps(load_keyring(keys, master_key(keys, create=False)))[os.environ[CASE_ENV]]


def start(bench: Bench, name: str, keys: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    # One hash seed for all: the processes then differ only in the case they serve.
    env.update({CASE_ENV: name, KEYS_ENV: str(keys), "PYTHONHASHSEED": "0"})
    cmd = [sys.executable, "-m", "uvicorn", "middleware_overhead_http:app", "--factory"]
    cmd += ["--app-dir", str(BENCH_DIR), "--host", HOST, "--port", str(port), *UVICORN_OPTIONS]
    log = bench.tmp / f"{name}.log"
    proc = bench.spawn(cmd, env, log)  # the Bench stops it (its own process group)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while True:  # ready once it answers at all; check() then says whether it answers right
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name}: not serving\n{log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(base + "/", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return Server(name, LABELS.get(name, name), base, "/", "/", proc, log, [proc.pid])


def placement(pin: bool) -> tuple[set[int], set[int]] | None:
    """(server CPUs, wrk CPUs): the servers on the first CPU, wrk on the others, so
    neither is migrated onto the other's core mid-run (less noise); None: not pinned."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else None


def check(server: Server, token: str, bad: str) -> None:
    """Nothing is timed unless the case accepts the token (and, protected, refuses others)."""
    got = httpx.get(server.url("/"), headers={"Authorization": f"Bearer {token}"})
    if got.status_code != 200 or got.json() != {"sub": "alice"}:
        raise SystemExit(f"{server.name}: {got.status_code} {got.text!r} with the token")
    if server.name not in PROTECTED:
        return
    for header in ({}, {"Authorization": f"Bearer {bad}"}):
        refused = httpx.get(server.url("/"), headers=header)
        if refused.status_code != 401:
            raise SystemExit(f"{server.name}: {refused.status_code} for {header or 'no token'}")


def measure(
    bench: Bench, servers: dict[str, Server], script: str, args: Any
) -> dict[str, list[WrkResult]]:
    def run(name: str, seconds: float) -> WrkResult:
        server = servers[name]
        result = wrk(
            server.url("/"),
            script,
            connections=args.connections,
            duration=seconds,
            workdir=bench.tmp,
            pids=server.pids,
        )
        if result.bad or result.errors:
            raise SystemExit(f"{name}: {result.bad} non-200 responses, errors {result.errors}")
        return result

    for name in servers:  # warm-up, not recorded
        run(name, args.warmup)
    results: dict[str, list[WrkResult]] = {name: [] for name in servers}
    for i, order in enumerate(round_orders(list(servers), args.rounds), 1):
        for name in order:
            results[name].append(run(name, args.duration))
            r = results[name][-1]
            print(f"round {i}: {name:14s} {r.rps:8.0f} rps", file=sys.stderr)
    return results


def cost_line(label: str, ratios: Sequence[float], target: float | None) -> str:
    """A paired cost ratio (lower is better), against a ≤ target when there is one."""
    q1, med, q3 = quartiles(ratios)
    rounds = " / ".join(f"{r:.2f}" for r in ratios)
    if target is None:
        return f"| {label} | {med:.2f}× | {q1:.2f}–{q3:.2f} | {rounds} | — | — |"
    verdict = ("PASS" if med <= target else "MISS") + " (HTTP, secondary)"
    return f"| {label} | {med:.2f}× | {q1:.2f}–{q3:.2f} | {rounds} | ≤ {target:g}× | {verdict} |"


def report(results: dict[str, list[WrkResult]]) -> None:
    rps = {n: [r.rps for r in runs] for n, runs in results.items()}
    cpu = {n: [r.server_cpu / r.ok * 1e6 for r in runs] for n, runs in results.items()}

    def above(a: str, b: str) -> float:  # median of the per-round differences, µs
        return statistics.median(x - y for x, y in zip(cpu[a], cpu[b], strict=True))

    print("## Server CPU per request (/proc; medians over the rounds)\n")
    print("| case | server CPU µs/request | above bare, µs (paired) |")
    print("|---|---:|---:|")
    for name in results:
        print(f"| {name} | {statistics.median(cpu[name]):.1f} | {above(name, 'bare'):+.1f} |")
    if "require" in results and "noop-dep" in results:
        print(f"\nrequire above noop-dep: {above('require', 'noop-dep'):+.1f} µs/request (paired)")
    print("\n## Cost per request relative to bare (medians of per-round paired ratios)\n")
    print("| ratio | median | IQR | per round | target | verdict |")
    print("|---|---:|---:|---|---:|---|")
    for name in results:
        if name != "bare":
            target = TARGET if name == "require" else None
            by_time = paired_ratios(rps["bare"], rps[name])  # (1/rps) / (1/rps_bare)
            by_cpu = paired_ratios(cpu[name], cpu["bare"])
            print(cost_line(f"{name} / bare, time per request", by_time, target))
            print(cost_line(f"{name} / bare, server CPU per request", by_cpu, target))
    print(
        f"\nSecondary figure (HTTP): the headline measurement for the ≤ {TARGET:g}× target "
        "stays bench/middleware_overhead.py (in process)."
    )


def main() -> int:
    parser = run_parser(__doc__, duration=1.0, warmup=2.0, connections=8)
    parser.set_defaults(rounds=24)  # many short rounds: the two of a pair ≤ 3 s apart
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    parser.add_argument("--cases", default=DEFAULT_CASES, help=f"of {','.join(LABELS)}")
    args = parse_run_args(parser, quick=(1, 2.0, 1.0))
    asked = filter(None, (n.strip() for n in args.cases.split(",")))
    names = list(dict.fromkeys(["bare", *asked]))  # bare first: every ratio is to it
    if any(n not in LABELS for n in names):
        parser.error(f"cases must be of {', '.join(LABELS)}")
    print("# FastAPI endpoint over HTTP, with and without tokenward (secondary figure)\n")
    print(
        "The headline for require ≤ 1.3× bare is bench/middleware_overhead.py (in process); "
        "this run serves the same apps with uvicorn and drives them with wrk.\n"
    )
    env = environment()
    for key in ("node", "express", "jsonwebtoken"):
        env.pop(key, None)
    print_environment(env)
    cpus = placement(args.pin)
    pinned = "not pinned"
    if cpus:
        pinned = f"servers on CPU {min(cpus[0])}, wrk on CPUs {','.join(map(str, sorted(cpus[1])))}"
    print(
        f"uvicorn (one process per case, PYTHONHASHSEED=0) {' '.join(UVICORN_OPTIONS)}; "
        f"{pinned}; wrk -t {args.connections} "
        f"-c {args.connections} -d {args.duration:g}s per run, {args.rounds} rounds, "
        f"{args.warmup:g} s warm-up per case; one ES256 token on every request\n"
    )
    ring = KeyRing()
    ring.generate("ES256", time.time())
    token = Issuer(ring, issuer=ISS, default_ttl=3600).issue("alice", AUD, scope="read write")
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with Bench() as bench:
        keys = bench.tmp / "keys"
        save_keyring(ring, keys, master_key(keys))  # what every server process loads
        if cpus:  # children inherit this process's affinity
            os.sched_setaffinity(0, cpus[0])
        servers = {name: start(bench, name, keys) for name in names}
        if cpus:
            os.sched_setaffinity(0, cpus[1])
        for server in servers.values():
            check(server, token, bad)
        script = get_script({"Authorization": f"Bearer {token}"})
        results = measure(bench, servers, script, args)
        print_rps_table(servers, results)
        report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
