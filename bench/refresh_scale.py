"""Refresh rotation throughput: SQLite vs PostgreSQL, one node vs two nodes.

The same chained POST /api/v1/refresh load as ``http_refresh.py`` (each wrk connection
carries its own refresh chain: one login per connection before the timed window, each
response's refresh token sent in the next request; a non-200 breaks the chain and is not
counted) against:

- ``sqlite``  ``tokenward serve`` on its SQLite file (the single-machine default);
- ``pg1``     ``tokenward serve`` on PostgreSQL + Redis, alone under load;
- ``pg2``     two such nodes on the same database, Redis prefix and master key, no load
              balancer: one wrk per node, run at the same time, each with half the
              connections; their successful rotations are summed.

``pg1`` is the first node of the ``pg2`` pair (the second idles meanwhile), so both use
one database. Every run has the same total number of connections. Rounds alternate the
order of the targets; reported are medians over the rounds and per-round paired ratios.

    python bench/refresh_scale.py                   # 3 rounds x 8 s per target
    python bench/refresh_scale.py --quick           # 1 round x 3 s

PostgreSQL and Redis as in ``revocation_propagation.py`` (``TOKENWARD_TEST_POSTGRES_URL``,
``TOKENWARD_TEST_REDIS_URL``); the database is created for the run and dropped after.
"""

from __future__ import annotations

import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from http_common import (
    Bench,
    Server,
    WrkResult,
    child_pids,
    create_bench_user,
    environment,
    fmt_rps,
    fresh_refresh_tokens,
    paired_ratios,
    parse_run_args,
    print_environment,
    print_ratio_header,
    print_rps_table,
    ratio_line,
    refresh_script,
    round_orders,
    run_parser,
    wrk,
)
from revocation_propagation import FAST_ARGON2, master_key, pg_database, pg_env, start_node

TARGETS = ("sqlite", "pg1", "pg2")
LABELS = {
    "sqlite": "tokenward serve, SQLite (1 node)",
    "pg1": "tokenward serve, PostgreSQL + Redis (1 node)",
    "pg2": "2 × tokenward serve, PostgreSQL + Redis (sum of both nodes)",
}


def node(bench: Bench, name: str, env: dict[str, str]) -> Server:
    base, proc = start_node(bench, name, env)
    server = Server(name, name, base, "/api/v1/login", "/api/v1/refresh", proc, bench.tmp)
    server.pids = [proc.pid, *child_pids(proc.pid)]
    return server


def run_one(server: Server, connections: int, seconds: float, workdir: Path) -> WrkResult:
    tokens = fresh_refresh_tokens(server, connections)
    workdir.mkdir(exist_ok=True)
    return wrk(
        server.url(server.refresh_path),
        refresh_script(server.refresh_path, tokens),
        connections=connections,
        duration=seconds,
        workdir=workdir,
        pids=server.pids,
    )


def combine(parts: list[WrkResult]) -> WrkResult:
    """Two nodes loaded at once, as one deployment: counts and CPU add up."""
    errors: dict[str, int] = {}
    for part in parts:
        for key, value in part.errors.items():
            errors[key] = errors.get(key, 0) + value
    return WrkResult(
        ok=sum(p.ok for p in parts),
        bad=sum(p.bad for p in parts),
        seconds=max(p.seconds for p in parts),
        p50_ms=max(p.p50_ms for p in parts),
        p99_ms=max(p.p99_ms for p in parts),
        errors=errors,
        server_cpu=sum(p.server_cpu for p in parts),
        machine=parts[0].machine,
    )


def main() -> int:
    parser = run_parser(
        __doc__, duration=8.0, warmup=2.0, connections_help="in all (pg2: half each)"
    )
    args = parse_run_args(parser)
    half = max(1, args.connections // 2)

    print("# Refresh rotation: SQLite vs PostgreSQL, one node vs two\n")
    print_environment(environment())
    print(
        f"wrk -t C -c C -d {args.duration:g}s, C = {args.connections} (pg2: {half} per node, "
        f"two wrk at once); {args.rounds} rounds; warm-up {args.warmup:g} s per target; "
        f"argon2 m={FAST_ARGON2[0]} t={FAST_ARGON2[1]} (logins only, outside the window)\n"
    )
    started = time.monotonic()
    prefix = f"twbench-{secrets.token_hex(4)}"
    with pg_database() as database_url, Bench() as bench:
        sqlite = bench.tokenward("sqlite", workers=1, argon2=FAST_ARGON2)
        master = master_key()
        nodes = [
            node(bench, f"pg-{i}", pg_env(bench.tmp / f"pg-{i}", database_url, prefix, master,
                                          FAST_ARGON2))
            for i in (1, 2)
        ]  # fmt: skip
        create_bench_user(nodes[0])
        for server in (sqlite, *nodes):
            print(f"{server.name}: {server.base} pids {server.pids}", file=sys.stderr)

        def run(name: str, seconds: float) -> WrkResult:
            if name == "sqlite":
                return run_one(sqlite, args.connections, seconds, bench.tmp / "w-sqlite")
            if name == "pg1":
                return run_one(nodes[0], args.connections, seconds, bench.tmp / "w-pg1")
            with ThreadPoolExecutor(2) as pool:
                futures = [
                    pool.submit(run_one, n, half, seconds, bench.tmp / f"w-{n.name}") for n in nodes
                ]
                return combine([f.result() for f in futures])

        for name in TARGETS:
            run(name, args.warmup)
        results: dict[str, list[WrkResult]] = {n: [] for n in TARGETS}
        for i, order in enumerate(round_orders(TARGETS, args.rounds), 1):
            for name in order:
                res = run(name, args.duration)
                results[name].append(res)
                note = f", {res.bad} non-200, errors {res.errors}" if res.bad or res.errors else ""
                print(f"round {i}: {name:6s} {fmt_rps(res.rps):>8s} rps{note}", file=sys.stderr)

    servers = {n: Server(n, LABELS[n], "", "", "", sqlite.proc, sqlite.log) for n in TARGETS}
    print("## Refresh rotations/s (200 responses only)\n")
    print_rps_table(servers, results)
    print("## Ratios (per-round paired)\n")
    print_ratio_header()
    rps = {n: [r.rps for r in results[n]] for n in TARGETS}
    print(ratio_line("PostgreSQL 1 node / SQLite", paired_ratios(rps["pg1"], rps["sqlite"]), None))
    print(ratio_line("PostgreSQL 2 nodes / 1 node", paired_ratios(rps["pg2"], rps["pg1"]), None))
    print(ratio_line("PostgreSQL 2 nodes / SQLite", paired_ratios(rps["pg2"], rps["sqlite"]), None))
    print(
        f"\nmedians: sqlite {fmt_rps(statistics.median(rps['sqlite']))}, pg1 "
        f"{fmt_rps(statistics.median(rps['pg1']))}, pg2 {fmt_rps(statistics.median(rps['pg2']))} "
        f"rotations/s\n\nwall time {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
