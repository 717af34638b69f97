"""HTTP refresh throughput: tokenward (rotation + reuse detection on SQLite) vs Express.

tokenward's POST /api/v1/refresh rotates an opaque refresh token: it looks the token up
by its SHA-256, checks its family and user, mints an access token, and in one SQLite
write transaction marks the token used and stores its successor (a compare-and-set);
each token works once, and presenting a used one revokes the whole family. The Express
reference (bench/express/server.js) verifies a refresh JWT statelessly and signs a new
pair: no state, no reuse detection.

Every wrk connection carries its own chain: it starts from a refresh token of its own
(one login per connection, made before the timed window) and sends each response's new
refresh token in the next request (``-t C -c C``: one thread = one connection = one
chain, the token held in that thread's Lua state). Any non-200 is counted and breaks
the chain, so the rps figure is successful rotations only.

Targets (``--targets``): ``tw`` tokenward serve, one worker (the headline); ``tw2`` the
ASGI entry under ``uvicorn --workers 2`` (``tokenward serve`` has no workers option);
``tw-hs256`` tokenward serve signing HS256 like the reference; ``express``; ``floor``,
``floor2`` and ``floor-normal`` (commits not durable), the Python floor
(bench/python_floor.py: the least a Python server can do for a rotation with reuse
detection on SQLite, under the same uvicorn), so that tokenward reads against the
language's ceiling too. All servers run at once, idle except for the one under load;
rounds rotate the order.

    python bench/http_refresh.py                       # 3 rounds x 10 s per target
    python bench/http_refresh.py --rounds 5 --targets tw,tw-hs256,express
    python bench/http_refresh.py --quick               # smoke run
"""

from __future__ import annotations

import statistics
import sys
import time

from http_common import (
    OWASP_ARGON2,
    TARGETS,
    Bench,
    WrkResult,
    add_launcher,
    check_refresh_semantics,
    environment,
    fmt_rps,
    fresh_refresh_tokens,
    paired_ratios,
    parse_run_args,
    print_environment,
    print_floor_ratios,
    print_ratio_header,
    print_rps_table,
    ratio_line,
    refresh_script,
    round_orders,
    run_parser,
    wrk,
)

TARGET_RATIO = 1.0  # tokenward refresh rps / Express refresh rps


def main() -> int:
    parser = run_parser(__doc__, connections_help="= wrk threads = chains")
    parser.add_argument("--targets", default="tw,tw2,express", help=f"of {','.join(TARGETS)}")
    add_launcher(parser)
    args = parse_run_args(parser)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or "express" not in names:
        parser.error(f"targets must be of {', '.join(TARGETS)} and include express")

    env = environment()
    print("# HTTP refresh: rotation + reuse detection (tokenward, SQLite) vs stateless (Express)\n")
    print_environment(env)
    print(
        f"wrk -t {args.connections} -c {args.connections} -d {args.duration:g}s per run; "
        f"{args.rounds} rounds; warm-up {args.warmup:g} s per target; one login per "
        "connection before each run; argon2 "
        f"m={OWASP_ARGON2[0]} t={OWASP_ARGON2[1]} p={OWASP_ARGON2[2]} (logins only)\n"
    )
    started = time.monotonic()
    with Bench() as bench:
        servers = {n: bench.start(n, argon2=OWASP_ARGON2, launcher=args.launcher) for n in names}
        for server in servers.values():
            print(f"{server.name}: {server.base} pids {server.pids}", file=sys.stderr)
        print("## Refresh semantics, checked on the wire\n")
        for server in servers.values():
            print(f"- {server.label}: {check_refresh_semantics(server)}")
        print()

        def run(name: str, seconds: float) -> WrkResult:
            server = servers[name]
            tokens = fresh_refresh_tokens(server, args.connections)
            script = refresh_script(server.refresh_path, tokens)
            return wrk(
                server.url(server.refresh_path),
                script,
                connections=args.connections,
                duration=seconds,
                workdir=bench.tmp,
                pids=server.pids,
            )

        for name in names:
            run(name, args.warmup)
        results: dict[str, list[WrkResult]] = {n: [] for n in names}
        for i, order in enumerate(round_orders(names, args.rounds), 1):
            for name in order:
                res = run(name, args.duration)
                results[name].append(res)
                note = f", {res.bad} non-200, errors {res.errors}" if res.bad or res.errors else ""
                print(f"round {i}: {name:9s} {fmt_rps(res.rps):>8s} rps{note}", file=sys.stderr)

    print("## Refresh requests/s (200 responses only)\n")
    print_rps_table(servers, results)
    print("## Ratios to Express /refresh (per-round paired)\n")
    print_ratio_header()
    express = [r.rps for r in results["express"]]
    for name in names:
        if name == "express":
            continue
        ratios = paired_ratios([r.rps for r in results[name]], express)
        target = TARGET_RATIO if name == "tw" else None
        print(ratio_line(f"{servers[name].label} / Express", ratios, target))
    express_cpu = [r.cpu_ms_per_ok for r in results["express"]]
    for name in names:
        if name == "express":
            continue
        # CPU per request, inverted: the rps ratio if both had the same CPU to themselves
        ratios = paired_ratios(express_cpu, [r.cpu_ms_per_ok for r in results[name]])
        print(ratio_line(f"CPU-normalised: {servers[name].label} / Express", ratios, None))
    print_floor_ratios(servers, results)
    print()
    if "tw" in results:
        headline = statistics.median(paired_ratios([r.rps for r in results["tw"]], express))
        print(
            f"refresh: tokenward / Express = {headline:.2f}× (target ≥ {TARGET_RATIO:g}×): "
            f"{'PASS' if headline >= TARGET_RATIO else 'MISS'}"
        )
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
