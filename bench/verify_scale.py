"""Verify cost vs deny-list size: is a RevocationView with 1 M revoked jtis still free?

A ``tokenward.Verifier`` (ES256 and HS256, verified-token cache on and off) verifies one
valid token while its ``RevocationView`` holds 0, 1, 10 k, 100 k and 1 M deny-listed jtis
(random 22-character ids, expiring an hour from now, as a busy server's view would after
a wave of logouts). The token itself is never revoked, so every verification consults the
deny-list and succeeds.

Cases are interleaved: every round runs every case once, in shuffled order, as a batch of
~5 ms timed in thread CPU time; reported is the median µs/op over the rounds and the
median of per-round ratios to the empty view (target: flat, ≤ 1.1×). The ``1`` column
shows the price of having any revocation state at all and ``1 M / 1`` the price of its
size. With the cache on, a hit checks revocation only when the view's generation stamp
moved since the token was last found unrevoked (never, here: the views stay still while
timed), so those rows measure the memo; the cache-off rows measure the check itself (one
deny-list lookup while only the deny-list is in use).

Memory: tracemalloc's count of the bytes allocated while filling each view (the dict, the
jti strings and the expiry floats).

    python bench/verify_scale.py             # ~1 minute
    python bench/verify_scale.py --quick     # smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import secrets
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version

from tokenward import Issuer, KeyRing, RevocationView, Verifier

ISS = "https://issuer.example"
AUD = "api://bench"
SIZES = (0, 1, 10_000, 100_000, 1_000_000)
TARGET = 1.1  # µs/op with N denied jtis / µs/op with an empty view
BATCH_SECONDS = 0.005


def build_view(size: int) -> tuple[RevocationView, int]:
    """A view with ``size`` random denied jtis; returns it and the bytes it allocated."""
    jtis = [secrets.token_urlsafe(16) for _ in range(size)]  # made outside the measurement
    exp = time.time() + 3600
    gc.collect()
    tracemalloc.start()
    view = RevocationView()
    for jti in jtis:
        view.deny(jti, exp)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del jtis  # the strings stay alive in the view: counted above only if allocated there
    return view, used


def jti_bytes(size: int) -> int:
    """What the jti strings themselves take (allocated before the view was measured)."""
    return size * sys.getsizeof(secrets.token_urlsafe(16))


def time_batch(fn: Callable[[], object], n: int) -> float:
    """µs per call of ``fn`` over ``n`` calls, thread CPU time."""
    t0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - t0) / n / 1000


def calibrate(fn: Callable[[], object]) -> int:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= BATCH_SECONDS / 4 or n >= 1 << 20:
            return max(1, int(n * BATCH_SECONDS / max(time.perf_counter() - t0, 1e-9)))
        n *= 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="10 rounds, up to 100 k")
    args = parser.parse_args()
    sizes = SIZES[:4] if args.quick else SIZES
    rounds = 10 if args.quick else args.rounds

    load = os.getloadavg()
    print("# Verify cost vs RevocationView size\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}")
    print(f"- machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, ", end="")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    print(f"- python {platform.python_version()}, tokenward {version('tokenward')}, ", end="")
    print(f"cryptography {version('cryptography')}")
    print(f"- {rounds} rounds, batches of ~{BATCH_SECONDS * 1000:g} ms, thread CPU time\n")

    views: dict[int, RevocationView] = {}
    memory: dict[int, int] = {}
    for size in sizes:
        views[size], memory[size] = build_view(size)
        print(f"built view of {size:,}: {len(views[size]):,} entries", file=sys.stderr)

    cases: dict[tuple[str, bool, int], Callable[[], object]] = {}
    for alg in ("ES256", "HS256"):
        ring = KeyRing()
        ring.generate(alg, time.time())
        token = Issuer(ring, issuer=ISS).issue("user-1", AUD, client_id="c", scope="read")
        for cache in (True, False):
            for size in sizes:
                v = Verifier(
                    ring, issuer=ISS, audience=AUD, revocation=views[size],
                    cache_size=4096 if cache else 0,
                )  # fmt: skip
                assert v.verify(token)["sub"] == "user-1"
                cases[(alg, cache, size)] = lambda v=v, t=token: v.verify(t)

    batch = {key: calibrate(fn) for key, fn in cases.items()}
    times: dict[tuple[str, bool, int], list[float]] = {key: [] for key in cases}
    order = list(cases)
    gc.disable()  # a collection over the 1 M-entry view would land in one batch at random
    try:
        for _ in range(rounds):
            random.shuffle(order)
            for key in order:
                times[key].append(time_batch(cases[key], batch[key]))
    finally:
        gc.enable()

    print_tables(sizes, times, memory)
    return 0


def print_tables(
    sizes: tuple[int, ...],
    times: dict[tuple[str, bool, int], list[float]],
    memory: dict[int, int],
) -> None:
    head = " | ".join(f"{s:,}" for s in sizes)
    print(f"## µs per verify (median over rounds), by denied jtis\n\n| case | {head} |")
    print("|---|" + "---:|" * len(sizes))
    for alg, cache in (("ES256", False), ("ES256", True), ("HS256", False), ("HS256", True)):
        row = " | ".join(f"{statistics.median(times[(alg, cache, s)]):.2f}" for s in sizes)
        print(f"| {alg}, cache {'on' if cache else 'off'} | {row} |")
    biggest = sizes[-1]
    print("\n## Ratio to the empty view (median of per-round ratios)\n")
    cols = " | ".join(f"{s:,}" for s in sizes[1:])
    print(
        f"| case | {cols} | {biggest:,} / 1 | vs empty ≤ {TARGET:g}× | size: N / 1 ≤ {TARGET:g}× |"
    )
    print("|---|" + "---:|" * len(sizes) + "---|---|")
    worst = worst_size = 0.0
    for alg, cache in (("ES256", False), ("ES256", True), ("HS256", False), ("HS256", True)):
        base = times[(alg, cache, 0)]
        ratios = [ratio(times[(alg, cache, s)], base) for s in sizes[1:]]
        flat = ratio(times[(alg, cache, biggest)], times[(alg, cache, 1)])
        top = max(ratios)
        growth = max(ratio(times[(alg, cache, s)], times[(alg, cache, 1)]) for s in sizes[2:])
        worst, worst_size = max(worst, top), max(worst_size, growth)
        cells = " | ".join(f"{r:.2f}×" for r in ratios)
        name = f"{alg}, cache {'on' if cache else 'off'}"
        print(f"| {name} | {cells} | {flat:.2f}× | {ok(top)} | {ok(growth)} |")
    print("\n## Memory of the view\n\n| denied jtis | allocated by the view | + jti strings |")
    print("|---:|---:|---:|")
    for s in sizes:
        print(f"| {s:,} | {mib(memory[s])} | {mib(memory[s] + jti_bytes(s))} |")
    print(f"\nworst ratio to the empty view {worst:.2f}× (target ≤ {TARGET:g}×): {ok(worst)}")
    print(f"worst ratio N denied / 1 denied {worst_size:.2f}× (target ≤ {TARGET:g}×): ", end="")
    print(ok(worst_size))


def ok(value: float) -> str:
    return "PASS" if value <= TARGET else "MISS"


def ratio(values: list[float], base: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(values, base, strict=True))


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


if __name__ == "__main__":
    raise SystemExit(main())
