"""Where one tokenward worker's CPU goes, thread by thread, under the HTTP benchmarks' load.

``http_login.py`` and ``http_refresh.py`` report the server's CPU per request as one
figure. This runs the same ``tokenward serve`` and the same wrk load (a correct login, or
chained refreshes) and reads every thread's user and system time from
``/proc/<pid>/task/*/stat`` before and after, so the figure splits into the event loop's
thread (the process's main thread), the SQLite writer and reader threads and the argon2
threads. Python's thread names are not the kernel's, so threads are told apart by what
they do: the main thread is the loop; under a login load the two busiest others are the
argon2 pool; the next is the SQLite writer.

    python bench/http_threads.py refresh
    python bench/http_threads.py login                      # OWASP argon2 parameters
    python bench/http_threads.py login --argon2 8192,1,1    # the hash small: the rest shows
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path

from http_common import (
    OWASP_ARGON2,
    Bench,
    WrkResult,
    fresh_refresh_tokens,
    login_script,
    refresh_script,
    stat_cpu,
    wrk,
)


@dataclass(frozen=True)
class ThreadCpu:
    tid: int
    user: float  # seconds
    system: float


def threads(pid: int) -> dict[int, ThreadCpu]:
    """User and system CPU seconds so far of each thread of ``pid``."""
    found: dict[int, ThreadCpu] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            tid = int(task.name)
            found[tid] = ThreadCpu(tid, *stat_cpu(task / "stat"))
    return found


def spent(before: dict[int, ThreadCpu], after: dict[int, ThreadCpu]) -> list[ThreadCpu]:
    """CPU each thread used between the two readings, busiest first, idle ones left out."""
    used = []
    for tid, end in after.items():
        start = before.get(tid, ThreadCpu(tid, 0.0, 0.0))
        share = ThreadCpu(tid, end.user - start.user, end.system - start.system)
        if share.user + share.system > 0:
            used.append(share)
    return sorted(used, key=lambda t: -(t.user + t.system))


def report(pid: int, shares: list[ThreadCpu], result: WrkResult) -> None:
    ok = result.ok or 1
    print(f"{result.rps:,.1f} requests/s (200s), {result.bad} others; CPU per 200 response:\n")
    print("| thread | user ms | system ms | total ms |")
    print("|---|---:|---:|---:|")
    for share in shares:
        name = "main (event loop)" if share.tid == pid else f"thread {share.tid}"
        user, system = 1000 * share.user / ok, 1000 * share.system / ok
        print(f"| {name} | {user:.3f} | {system:.3f} | {user + system:.3f} |")
    user = 1000 * sum(s.user for s in shares) / ok
    system = 1000 * sum(s.system for s in shares) / ok
    print(f"| all | {user:.3f} | {system:.3f} | {user + system:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("load", choices=("login", "refresh"))
    parser.add_argument("--argon2", default=",".join(map(str, OWASP_ARGON2)), help="m,t,p")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk")
    parser.add_argument("--connections", type=int, default=8, help="= wrk threads")
    args = parser.parse_args()
    memory, time_cost, parallelism = (int(x) for x in args.argon2.split(","))
    with Bench() as bench:
        server = bench.start("tw", argon2=(memory, time_cost, parallelism), launcher="serve")
        pid = server.pids[0]

        def run(seconds: float) -> tuple[WrkResult, list[ThreadCpu]]:
            if args.load == "login":
                path, script = server.login_path, login_script()
            else:  # the logins that start the chains stay out of the reading
                path = server.refresh_path
                script = refresh_script(path, fresh_refresh_tokens(server, args.connections))
            before = threads(pid)
            result = wrk(
                server.url(path),
                script,
                connections=args.connections,
                duration=seconds,
                workdir=bench.tmp,
            )
            return result, spent(before, threads(pid))

        run(3.0)  # warm-up
        result, shares = run(args.duration)
    print(f"tokenward serve, {args.load}, argon2 {args.argon2}, wrk -c {args.connections}\n")
    report(pid, shares, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
