"""HTTP login throughput: tokenward vs the argon2id floor, with Express for reference.

tokenward's POST /api/v1/login verifies the password with argon2id in a worker thread
(``asyncio.to_thread``; argon2 releases the GIL), then starts a session: a family and
its first refresh token in SQLite, an access token, audit rows. Logins are bound by the
hash, so the yardstick is the **argon2 floor**: ``cores / t``, where ``t`` is the median
time of one ``argon2.PasswordHasher.verify`` (which recomputes the argon2id hash and
compares) at the same parameters as the server, measured in this process between the
wrk runs (the servers idle then). The floor is what the machine could do if every core
did nothing but hash. A second, measured figure runs ``cores`` threads of verify in
parallel for a moment (memory bandwidth shared as in the server).

The Express reference (bench/express/server.js) compares the password in plain text:
its login rps is shown for scale, not as a target.

Targets (``--targets``): ``tw`` tokenward serve, one worker (the headline); ``tw2`` the
ASGI entry under ``uvicorn --workers 2`` (``tokenward serve`` has no workers option);
``express``, ``express-str``; ``floor``, the Python floor (bench/python_floor.py: a bare
ASGI login that verifies with argon2id in the same thread pool shape, then starts a
family in SQLite; the least a Python server can do per login). Rate limits are raised
to 1000000/minute and the lockout threshold to 1000000 so that neither interferes;
argon2 defaults to the server's own OWASP parameters (m=19456 KiB, t=2, p=1).

    python bench/http_login.py                      # 3 rounds x 10 s per target
    python bench/http_login.py --argon2 65536,3,4   # other parameters (server and floor)
    python bench/http_login.py --quick              # smoke run
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from http_common import (
    BENCH_PASSWORD,
    OWASP_ARGON2,
    TARGETS,
    Bench,
    WrkResult,
    add_launcher,
    cores,
    environment,
    fmt_rps,
    login_script,
    paired_ratios,
    parse_run_args,
    print_environment,
    print_floor_ratios,
    print_ratio_header,
    print_rps_table,
    ratio_line,
    round_orders,
    run_parser,
    wrk,
)

TARGET_RATIO = 0.9  # tokenward login rps / argon2 floor
_HASH_SLOT = "(argon2)"  # the in-process floor's slot in a round, beside the targets


def hasher(argon2: tuple[int, int, int]) -> PasswordHasher:
    memory, time_cost, parallelism = argon2
    # the same construction as tokenward.server.passwords.Passwords
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


@dataclass(frozen=True)
class Floor:
    verify_ms: float  # median wall time of one verify
    verify_cpu_ms: float  # median thread CPU time of one verify
    floor: float  # cores / verify time, per second
    parallel: float  # measured: ``cores`` threads verifying flat out, per second


def measure_floor(ph: PasswordHasher, encoded: str, ncores: int, seconds: float) -> Floor:
    """Half the time one verify after another (median wall and CPU time of one), half
    ``ncores`` threads verifying in parallel (argon2-cffi releases the GIL)."""
    wall, cpu = [], []
    deadline = time.perf_counter() + seconds / 2
    while time.perf_counter() < deadline or len(wall) < 3:
        c0, t0 = time.thread_time(), time.perf_counter()
        ph.verify(encoded, BENCH_PASSWORD)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    t = statistics.median(wall)
    return Floor(
        verify_ms=t * 1000,
        verify_cpu_ms=statistics.median(cpu) * 1000,
        floor=ncores / t,
        parallel=parallel_verify_rps(ph, encoded, ncores, seconds / 2),
    )


def parallel_verify_rps(ph: PasswordHasher, encoded: str, threads: int, seconds: float) -> float:
    """Verifies per second with ``threads`` threads hashing flat out."""
    deadline = time.perf_counter() + seconds

    def worker() -> int:
        done = 0
        while time.perf_counter() < deadline:
            ph.verify(encoded, BENCH_PASSWORD)
            done += 1
        return done

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(f.result() for f in [pool.submit(worker) for _ in range(threads)])
    return total / (time.perf_counter() - t0)


def _row(label: str, values: list[float]) -> str:
    per_round = " / ".join(f"{v:.1f}" for v in values)
    return f"| {label} | {statistics.median(values):.1f} | {per_round} |"


def main() -> int:
    parser = run_parser(__doc__)
    parser.add_argument("--targets", default="tw,tw2,express", help=f"of {','.join(TARGETS)}")
    parser.add_argument(
        "--argon2",
        default=",".join(map(str, OWASP_ARGON2)),
        help="memory KiB,time cost,parallelism (server and floor) [%(default)s]",
    )
    add_launcher(parser)
    args = parse_run_args(parser)
    memory, time_cost, parallelism = (int(x) for x in args.argon2.split(","))
    argon2 = (memory, time_cost, parallelism)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    if any(n not in TARGETS for n in names):
        parser.error(f"targets must be of {', '.join(TARGETS)}")
    ncores = cores()
    ph = hasher(argon2)
    encoded = ph.hash(BENCH_PASSWORD)

    env = environment()
    print("# HTTP login: tokenward vs the argon2id floor (Express for scale)\n")
    print_environment(env)
    print(
        f"argon2id m={memory} KiB t={time_cost} p={parallelism}; wrk -t {args.connections} "
        f"-c {args.connections} -d {args.duration:g}s per run; {args.rounds} rounds; "
        f"warm-up {args.warmup:g} s per target; floor = {ncores} cores / median verify time, "
        f"measured in its own {args.duration:g} s slot of each round\n"
    )
    started = time.monotonic()
    floors: list[Floor] = []
    with Bench() as bench:
        servers = {n: bench.start(n, argon2=argon2, launcher=args.launcher) for n in names}
        for server in servers.values():
            print(f"{server.name}: {server.base} pids {server.pids}", file=sys.stderr)

        def run(name: str, seconds: float) -> WrkResult:
            server = servers[name]
            return wrk(
                server.url(server.login_path),
                login_script(),
                connections=args.connections,
                duration=seconds,
                workdir=bench.tmp,
                pids=server.pids,
            )

        for name in names:
            run(name, args.warmup)
        results: dict[str, list[WrkResult]] = {n: [] for n in names}
        # the floor takes its own slot in the rotation, as long as a wrk run
        for i, order in enumerate(round_orders([*names, _HASH_SLOT], args.rounds), 1):
            for name in order:
                if name == _HASH_SLOT:
                    f = measure_floor(ph, encoded, ncores, args.duration)
                    floors.append(f)
                    print(
                        f"round {i}: floor       {f.floor:8.1f} /s (verify {f.verify_ms:.1f} ms,"
                        f" {ncores} threads measured {f.parallel:.1f} /s)",
                        file=sys.stderr,
                    )
                    continue
                res = run(name, args.duration)
                results[name].append(res)
                note = f", {res.bad} non-200, errors {res.errors}" if res.bad or res.errors else ""
                print(f"round {i}: {name:11s} {fmt_rps(res.rps):>8s} rps{note}", file=sys.stderr)

    print("## argon2id floor (in-process, its own slot in each round)\n")
    print("| figure | median | per round |")
    print("|---|---:|---|")
    print(_row("one verify, wall ms", [f.verify_ms for f in floors]))
    print(_row("one verify, CPU ms", [f.verify_cpu_ms for f in floors]))
    print(_row(f"floor = {ncores} cores / verify wall time, per s", [f.floor for f in floors]))
    print(_row(f"measured: {ncores} threads verifying, per s", [f.parallel for f in floors]))
    print()
    print("## Login requests/s (200 responses only)\n")
    print_rps_table(servers, results)
    print("## Ratios (per-round paired)\n")
    print_ratio_header()
    for name in names:
        if TARGETS[name]["kind"] == "express":
            continue
        rps = [r.rps for r in results[name]]
        label = servers[name].label
        target = TARGET_RATIO if name == "tw" else None
        print(
            ratio_line(
                f"{label} / argon2 floor", paired_ratios(rps, [f.floor for f in floors]), target
            )
        )
        measured = paired_ratios(rps, [f.parallel for f in floors])
        print(ratio_line(f"{label} / measured {ncores}-thread verify", measured, None))
        # CPU efficiency: the hash's CPU over all the server's CPU per login (1 = only hashing)
        cpu = paired_ratios(
            [f.verify_cpu_ms for f in floors], [r.cpu_ms_per_ok for r in results[name]]
        )
        print(ratio_line(f"{label}: verify CPU / server CPU per login", cpu, None))
    print_floor_ratios(servers, results)
    print()
    if "tw" in results:
        headline = statistics.median(
            paired_ratios([r.rps for r in results["tw"]], [f.floor for f in floors])
        )
        print(
            f"login: tokenward / argon2 floor = {headline:.2f}× (target ≥ {TARGET_RATIO:g}×): "
            f"{'PASS' if headline >= TARGET_RATIO else 'MISS'}"
        )
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
