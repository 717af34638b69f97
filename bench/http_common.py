"""Shared helpers for the HTTP benchmarks (``http_login.py``, ``http_refresh.py``).

Starts and stops the servers under test (tokenward with ``tokenward serve`` or with
``uvicorn tokenward.server.asgi:app --workers N``, and the Express reference in
``bench/express``), drives them with ``wrk`` and a generated Lua script, and formats the
results. Everything listens on 127.0.0.1 only; every process started here is stopped
(by its own process group id) when the ``Bench`` context exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
EXPRESS_DIR = BENCH_DIR / "express"
HOST = "127.0.0.1"

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-pass-9876"  # a throwaway account on a throwaway store
ADMIN_PASSWORD = "bench-admin-Pw-5531"
NO_LIMIT = "1000000/minute"
OWASP_ARGON2 = (19456, 2, 1)  # memory KiB, time cost, parallelism: the server's defaults
JSON_HEADERS = {"Content-Type": "application/json"}
HMAC_SECRET = "bench-hs256-secret-" + "x" * 45  # 64 bytes, for the HS256 variant only

# Targets: name -> how to run it. "tw" is the headline (tokenward serve, defaults).
TARGETS: dict[str, dict[str, Any]] = {
    "tw": {"kind": "tokenward", "workers": 1, "label": "tokenward serve (1 worker, ES256)"},
    "tw2": {
        "kind": "tokenward",
        "workers": 2,
        "label": "tokenward asgi, uvicorn --workers 2 (ES256)",
    },
    "tw-hs256": {
        "kind": "tokenward",
        "workers": 1,
        "alg": "HS256",
        "label": "tokenward serve (1 worker, HS256)",
    },
    "express": {"kind": "express", "label": "Express + jsonwebtoken (HS256, KeyObject secrets)"},
    # The Python floor (bench/python_floor.py): bare ASGI, stdlib sqlite3, argon2 threads.
    "floor": {"kind": "floor", "workers": 1, "label": "Python floor (1 worker)"},
    "floor2": {"kind": "floor", "workers": 2, "label": "Python floor (uvicorn --workers 2)"},
    "floor-normal": {  # commits not durable (WAL, synchronous=NORMAL): what fsync costs
        "kind": "floor",
        "workers": 1,
        "sync": "NORMAL",
        "label": "Python floor, synchronous=NORMAL (1 worker)",
    },
    "express-str": {
        "kind": "express",
        "secret_mode": "string",
        "label": "Express + jsonwebtoken (HS256, string secrets)",
    },
}


# -- small utilities -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3); with fewer than two values all three are the value."""
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "MISS"


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "n/a"


def _node_pkg(name: str) -> str:
    try:
        data = json.loads((EXPRESS_DIR / "node_modules" / name / "package.json").read_text())
    except OSError:
        return "n/a"
    return str(data.get("version", "n/a"))


def _command_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "n/a"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "n/a"


def environment() -> dict[str, str]:
    """Versions and machine facts printed with every run (and copied into the docs)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {cores()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "tokenward": _pkg("tokenward"),
        "server stack": ", ".join(
            f"{n} {_pkg(n)}"
            for n in (
                "uvicorn",
                "uvloop",
                "httptools",
                "fastapi",
                "starlette",
                "pydantic",
                "SQLAlchemy",
                "argon2-cffi",
                "argon2-cffi-bindings",
                "limits",
            )
        )
        + f", SQLite {sqlite3.sqlite_version}",
        "node": _command_version(["node", "--version"]),
        "express": _node_pkg("express"),
        "jsonwebtoken": _node_pkg("jsonwebtoken"),
        "wrk": _command_version(["wrk", "-v"]).split(" Copyright")[0],
    }


def print_environment(env: dict[str, str]) -> None:
    print("## Environment\n")
    for key, value in env.items():
        print(f"- {key}: {value}")
    print()


# -- servers ---------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    label: str
    base: str
    login_path: str
    refresh_path: str
    proc: subprocess.Popen[bytes]
    log: Path
    pids: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _clean_env() -> dict[str, str]:
    """The parent's environment without any TOKENWARD_* setting (the bench sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}


def tokenward_env(
    data_dir: Path, argon2: tuple[int, int, int], alg: str = "ES256"
) -> dict[str, str]:
    memory, time_cost, parallelism = argon2
    env = _clean_env()
    env.update(
        TOKENWARD_DATA_DIR=str(data_dir),
        TOKENWARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
        TOKENWARD_ARGON2_MEMORY_KIB=str(memory),
        TOKENWARD_ARGON2_TIME_COST=str(time_cost),
        TOKENWARD_ARGON2_PARALLELISM=str(parallelism),
        TOKENWARD_LOGIN_RATE_PER_IP=NO_LIMIT,
        TOKENWARD_LOGIN_RATE_PER_ACCOUNT=NO_LIMIT,
        TOKENWARD_TOKEN_RATE_PER_IP=NO_LIMIT,
        TOKENWARD_TOKEN_RATE_PER_ACCOUNT=NO_LIMIT,
        TOKENWARD_LOCKOUT_THRESHOLD="1000000",
        TOKENWARD_SIGNING_ALG=alg,
    )
    if alg.startswith("HS"):
        env["TOKENWARD_HMAC_SECRET"] = HMAC_SECRET
    return env


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with {proc.returncode} before ready:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f} s: {url}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this bench started (pgid == its pid), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


class Bench(contextlib.ExitStack):
    """Owns a temporary directory and every server process; closes them all on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(self.enter_context(tempfile.TemporaryDirectory(prefix="tw-http-bench-")))
        self._procs: list[subprocess.Popen[bytes]] = []
        self.callback(self._stop_all)

    def _stop_all(self) -> None:
        for proc in reversed(self._procs):
            _stop(proc)

    def spawn(
        self, cmd: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in its own process group, output to ``log``; stopped on exit."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(cmd),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a unit
            )
        self._procs.append(proc)
        return proc

    _spawn = spawn  # the earlier name, still used by callers

    # tokenward ----------------------------------------------------------------------------
    def tokenward(
        self,
        name: str,
        *,
        workers: int,
        argon2: tuple[int, int, int],
        alg: str = "ES256",
        launcher: str = "serve",
        label: str = "",
    ) -> Server:
        """One worker: ``python -m tokenward.cli serve`` (or the ASGI entry with uvicorn's
        CLI when ``launcher == "asgi"``). More workers: ``tokenward serve`` has no workers
        option, so ``uvicorn tokenward.server.asgi:app --workers N``, after one single
        process start has created the data directory, the database and the keys (two
        workers starting on an empty directory would each generate a key ring)."""
        data_dir = self.tmp / name
        data_dir.mkdir(mode=0o700)
        env = tokenward_env(data_dir, argon2, alg)
        log = self.tmp / f"{name}.log"
        port = free_port()
        if workers > 1:  # first start: create the store, keys and admin, then stop
            _stop(self._single(env, log, port, launcher))
            proc = self.spawn(_uvicorn_cmd(port, workers), env, log)
        else:
            proc = self._single(env, log, port, launcher)
        base = f"http://{HOST}:{port}"
        _wait_ready(proc, base + "/healthz", log)
        server = Server(name, label or name, base, "/api/v1/login", "/api/v1/refresh", proc, log)
        server.pids = [proc.pid, *child_pids(proc.pid)]
        create_bench_user(server)
        return server

    def _single(
        self, env: dict[str, str], log: Path, port: int, launcher: str
    ) -> subprocess.Popen[bytes]:
        """One process: ``tokenward serve``, or uvicorn's CLI on the ASGI entry."""
        if launcher == "serve":
            cmd = [sys.executable, "-m", "tokenward.cli", "serve"]
            cmd += ["--data-dir", env["TOKENWARD_DATA_DIR"], "--host", HOST, "--port", str(port)]
        else:
            cmd = _uvicorn_cmd(port, 1)
        proc = self.spawn(cmd, env, log)
        _wait_ready(proc, f"http://{HOST}:{port}/healthz", log)
        return proc

    # express ------------------------------------------------------------------------------
    def express(self, name: str = "express") -> Server:
        spec = TARGETS[name]
        if not (EXPRESS_DIR / "node_modules" / "express").is_dir():
            print("bench/express/node_modules missing: running `npm ci` there", file=sys.stderr)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR, check=True)
        port = free_port()
        env = _clean_env()
        env.update(BENCH_USER=BENCH_USER, BENCH_PASSWORD=BENCH_PASSWORD, NODE_ENV="production")
        env["SECRET_MODE"] = spec.get("secret_mode", "keyobject")
        log = self.tmp / f"{name}.log"
        proc = self.spawn(["node", "server.js", str(port)], env, log, cwd=EXPRESS_DIR)
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while True:  # no health route: ready when a login answers
            with contextlib.suppress(httpx.HTTPError):
                login(base + "/login")
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        return Server(name, spec["label"], base, "/login", "/refresh", proc, log, [proc.pid])

    # the Python floor --------------------------------------------------------------------------
    def floor(self, name: str, argon2: tuple[int, int, int]) -> Server:
        """bench/python_floor.py under uvicorn with ``tokenward serve``'s options."""
        spec, port = TARGETS[name], free_port()
        env = _clean_env()
        env.update(BENCH_USER=BENCH_USER, BENCH_PASSWORD=BENCH_PASSWORD)
        env["FLOOR_ARGON2"] = ",".join(map(str, argon2))
        env["FLOOR_SYNC"] = spec.get("sync", "FULL")
        env["FLOOR_DB"] = str(self.tmp / f"{name}.db")
        cmd = _uvicorn_cmd(port, spec["workers"], "python_floor:app")
        base, log = f"http://{HOST}:{port}", self.tmp / f"{name}.log"
        proc = self.spawn([*cmd, "--app-dir", str(BENCH_DIR)], env, log)
        _wait_ready(proc, base + "/healthz", log)
        pids = [proc.pid, *child_pids(proc.pid)]
        return Server(name, spec["label"], base, "/login", "/refresh", proc, log, pids)

    def start(self, name: str, *, argon2: tuple[int, int, int], launcher: str) -> Server:
        spec = TARGETS[name]
        if spec["kind"] == "express":
            return self.express(name)
        if spec["kind"] == "floor":
            return self.floor(name, argon2)
        label = spec["label"]
        if launcher == "asgi" and spec["workers"] == 1:
            label = label.replace("tokenward serve", "tokenward asgi, uvicorn")
        return self.tokenward(
            name,
            workers=spec["workers"],
            argon2=argon2,
            alg=spec.get("alg", "ES256"),
            launcher=launcher,
            label=label,
        )


def _uvicorn_cmd(port: int, workers: int, app: str = "tokenward.server.asgi:app") -> list[str]:
    # The same uvicorn options as ``tokenward serve`` (cli/server.py): info log level with
    # access log, no proxy headers, no Server header.
    cmd = [sys.executable, "-m", "uvicorn", app]
    cmd += ["--host", HOST, "--port", str(port), "--no-proxy-headers", "--no-server-header"]
    cmd += ["--timeout-graceful-shutdown", "10"]
    return cmd + (["--workers", str(workers)] if workers > 1 else [])


# -- HTTP helpers ----------------------------------------------------------------------------
def login(url: str, username: str = BENCH_USER, password: str = BENCH_PASSWORD) -> dict[str, Any]:
    r = httpx.post(url, json={"username": username, "password": password}, timeout=30)
    r.raise_for_status()
    return dict(r.json())


def create_bench_user(server: Server) -> None:
    """The ``bench`` account, created through the admin API (as the bootstrapped admin)."""
    admin = login(server.url(server.login_path), "admin", ADMIN_PASSWORD)
    r = httpx.post(
        server.url("/api/v1/admin/users"),
        json={"username": BENCH_USER, "password": BENCH_PASSWORD, "roles": []},
        headers={"Authorization": f"Bearer {admin['access_token']}"},
        timeout=30,
    )
    if r.status_code not in (201, 409):
        raise RuntimeError(f"creating the bench user failed: {r.status_code} {r.text[:300]}")


def refresh(server: Server, token: str) -> httpx.Response:
    return httpx.post(server.url(server.refresh_path), json={"refresh_token": token}, timeout=30)


def fresh_refresh_tokens(server: Server, n: int) -> list[str]:
    """n new sessions (one login each), outside any timed window."""
    return [login(server.url(server.login_path))["refresh_token"] for _ in range(n)]


def check_refresh_semantics(server: Server) -> str:
    """Rotation and reuse detection as the server implements them, checked on the wire."""
    t0 = fresh_refresh_tokens(server, 1)[0]
    first = refresh(server, t0)
    if first.status_code != 200:
        raise RuntimeError(f"{server.name}: refresh failed: {first.status_code} {first.text}")
    t1 = first.json()["refresh_token"]
    replay = refresh(server, t0).status_code
    after = refresh(server, t1).status_code
    if replay == 200:
        return "stateless: a used refresh token is accepted again (no rotation state)"
    if after == 200:
        return f"rotation: replay refused ({replay}), but the family survived"
    return f"rotation: replay refused ({replay}), family revoked (next token {after})"


# -- wrk -------------------------------------------------------------------------------------
_DONE_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  if tokens then thread:set("token", tokens[#threads]) end
end
function init(args) ok = 0; bad = 0 end
function done(summary, latency, requests)
  local okt, badt = 0, 0
  for _, t in ipairs(threads) do okt = okt + t:get("ok"); badt = badt + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, okt, badt, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""

_LOGIN_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[BODY]==]
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
"""

# One thread = one connection = one chain: each response's refresh_token is the body of
# the next request. A non-200 breaks the chain (every later request then fails too).
_REFRESH_LUA = r"""
tokens = { TOKENS }
function request()
  return wrk.format("POST", "PATH", { ["Content-Type"] = "application/json" },
                    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local nxt = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if nxt then token = nxt; ok = ok + 1 else bad = bad + 1 end
end
"""


_GET_LUA = r"""
HEADERS
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
"""


def get_script(headers: Mapping[str, str]) -> str:
    """GET the URL with the same headers on every request; a 200 counts as ok."""
    lines = []
    for name, value in headers.items():
        if not re.fullmatch(r"[\x20-\x7e]*", name + value) or "]==]" in name + value:
            raise ValueError("header names and values must be printable ASCII")
        lines.append(f"wrk.headers[ [==[{name}]==] ] = [==[{value}]==]")
    return _GET_LUA.replace("HEADERS", "\n".join(lines)) + _DONE_LUA


def login_script() -> str:
    body = json.dumps({"username": BENCH_USER, "password": BENCH_PASSWORD})
    return _LOGIN_LUA.replace("BODY", body) + _DONE_LUA


def refresh_script(path: str, tokens: Sequence[str]) -> str:
    for token in tokens:
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", token):
            raise ValueError("unexpected characters in a refresh token")
    quoted = ", ".join(f'"{t}"' for t in tokens)
    return _REFRESH_LUA.replace("TOKENS", quoted).replace("PATH", path) + _DONE_LUA


@dataclass(frozen=True)
class WrkResult:
    ok: int
    bad: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu: float = 0.0  # CPU seconds (user + system) of the server's processes
    machine: MachineShare | None = None

    @property
    def rps(self) -> float:
        """Successful (200) responses per second; failures are not counted."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_ok(self) -> float:
        """Server CPU per successful request: unlike rps, barely moved by other load."""
        return self.server_cpu / self.ok * 1000 if self.ok else float("nan")


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_cpu(stat: Path) -> tuple[float, float]:
    """User and system CPU seconds so far from a /proc ``stat`` file (a process's or a
    thread's); raises OSError when it is gone."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by these processes (Linux /proc)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += sum(stat_cpu(Path(f"/proc/{pid}/stat")))
    return total


@dataclass(frozen=True)
class MachineShare:
    """Where the machine's CPU time went during a run (/proc/stat), in percent."""

    busy: float
    idle: float
    steal: float


def _cpu_counters() -> list[int]:
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return []


def machine_share(before: list[int], after: list[int]) -> MachineShare | None:
    if len(before) < 8 or len(after) < 8:
        return None
    d = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(d[:8]) or 1
    idle = d[3] + d[4]  # idle + iowait
    return MachineShare(
        busy=100 * (total - idle - d[7]) / total, idle=100 * idle / total, steal=100 * d[7] / total
    )


def wrk(
    url: str,
    script: str,
    *,
    connections: int,
    duration: float,
    workdir: Path,
    pids: Sequence[int] = (),
) -> WrkResult:
    """``wrk -t C -c C``: one thread per connection (so a thread's Lua state is a chain).

    Also measures the CPU time the server's processes (``pids``) used during the run."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    path = workdir / "bench.lua"
    path.write_text(script)
    cmd = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{duration:g}s"]
    cmd += ["--timeout", "30s", "-s", str(path), url]
    cpu0, machine0 = process_cpu(pids), _cpu_counters()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration + 60)
    cpu1, machine1 = process_cpu(pids), _cpu_counters()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return WrkResult(
        ok=data["ok"],
        bad=data["bad"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        server_cpu=cpu1 - cpu0,
        machine=machine_share(machine0, machine1),
    )


def round_orders(names: Sequence[str], rounds: int) -> Iterator[list[str]]:
    """Round i runs the targets rotated by i: every target is first, middle and last."""
    for i in range(rounds):
        k = i % len(names)
        yield list(names[k:]) + list(names[:k])


# -- reporting -------------------------------------------------------------------------------
def print_rps_table(servers: dict[str, Server], results: dict[str, list[WrkResult]]) -> None:
    """Median requests/s over the rounds, the per-round figures, latency and failures."""
    print(
        "| target | median rps | per round | p50 ms | p99 ms | server CPU ms/req "
        "| server cores busy | non-200 / errors |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        rps = [r.rps for r in runs]
        per_round = " / ".join(fmt_rps(v) for v in rps)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        bad = sum(r.bad for r in runs)
        errors = sum(sum(r.errors.values()) for r in runs)
        cpu = statistics.median(r.cpu_ms_per_ok for r in runs)
        busy = statistics.median(r.server_cpu / r.seconds for r in runs if r.seconds)
        print(
            f"| {servers[name].label} | {fmt_rps(statistics.median(rps))} | {per_round} "
            f"| {p50:.1f} | {p99:.1f} | {cpu:.2f} | {busy:.2f} | {bad} / {errors} |"
        )
    print()
    shares = [r.machine for runs in results.values() for r in runs if r.machine is not None]
    if shares:
        busy = sorted(m.busy for m in shares)
        print(
            f"Whole machine during the runs (server, wrk and any other tenant; /proc/stat): "
            f"busy median "
            f"{statistics.median(busy):.0f} % (range {busy[0]:.0f}–{busy[-1]:.0f}); median idle "
            f"{statistics.median(m.idle for m in shares):.0f} %, median steal "
            f"{statistics.median(m.steal for m in shares):.0f} %.\n"
        )


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-round ratios: both figures were taken in the same round (shared noise)."""
    return [a / b if b else float("nan") for a, b in zip(numerator, denominator, strict=True)]


def ratio_line(label: str, ratios: Sequence[float], target: float | None) -> str:
    q1, med, q3 = quartiles(ratios)
    rounds = " / ".join(f"{r:.2f}" for r in ratios)
    status = f" | ≥ {target:g}× | **{verdict(med, target)}**" if target is not None else " | — | —"
    return f"| {label} | {med:.2f}× | {q1:.2f}–{q3:.2f} | {rounds}{status} |"


def print_floor_ratios(
    servers: Mapping[str, Server], results: Mapping[str, list[WrkResult]]
) -> None:
    """Each tokenward target's rps over each Python floor's (per-round paired)."""
    floors = [n for n in results if TARGETS[n]["kind"] == "floor"]
    for name in (n for n in results if TARGETS[n]["kind"] == "tokenward"):
        for floor in floors:
            ratios = paired_ratios([r.rps for r in results[name]], [r.rps for r in results[floor]])
            print(ratio_line(f"{servers[name].label} / {servers[floor].label}", ratios, None))


def print_ratio_header() -> None:
    print("| ratio | median | IQR | per round | target | verdict |")
    print("|---|---:|---:|---|---:|---|")


# -- command line shared by the wrk benchmarks --------------------------------------------
def run_parser(
    doc: str,
    *,
    duration: float = 10.0,
    warmup: float = 3.0,
    connections: int = 8,
    connections_help: str = "= wrk threads",
) -> argparse.ArgumentParser:
    """The options every wrk benchmark takes: rounds, duration, warm-up, connections, --quick."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=duration, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=connections, help=connections_help)
    parser.add_argument("--warmup", type=float, default=warmup, help="seconds per target")
    parser.add_argument("--quick", action="store_true", help="1 short round (smoke test)")
    return parser


def add_launcher(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=("serve", "asgi"),
        default="serve",
        help="one-worker tokenward: `tokenward serve` or uvicorn on the ASGI entry",
    )


def parse_run_args(
    parser: argparse.ArgumentParser, quick: tuple[int, float, float] = (1, 3.0, 1.0)
) -> argparse.Namespace:
    """Parse; --quick sets (rounds, duration, warm-up) to ``quick``."""
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = quick
    return args
