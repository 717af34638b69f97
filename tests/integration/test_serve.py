"""`tokenward serve` as a real process: a fresh machine, a login over HTTP, a restart.

The server runs under uvicorn in a subprocess with small argon2 parameters (the real-process
tests are marked slow: about 15 s in all). Waiting is only ever for a starting or stopping
process, by polling with a deadline; no test waits for a token to expire. ``ServerProcess``
is shared with test_restart.py. The admin bootstrap is also tested in process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from tokenward import RemoteJWKS, Verifier
from tokenward.server.bootstrap import bootstrap
from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
PASSWORD_LINE = "admin password: "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any TOKENWARD_ setting, plus fast test parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        PYTHONUNBUFFERED="1",
        TOKENWARD_ARGON2_MEMORY_KIB="8192",
        TOKENWARD_ARGON2_TIME_COST="1",
        TOKENWARD_LOGIN_RATE_PER_IP="10000/minute",
        TOKENWARD_LOGIN_RATE_PER_ACCOUNT="10000/minute",
        TOKENWARD_TOKEN_RATE_PER_IP="100000/minute",
        TOKENWARD_TOKEN_RATE_PER_ACCOUNT="100000/minute",
        **extra,
    )
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tokenward.cli", *args]


class ServerProcess:
    """``tokenward serve`` in a subprocess; always gone when the ``with`` block ends."""

    def __init__(
        self, data_dir: Path, port: int, env: dict[str, str], command: list[str] | None = None
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            command or cli("serve", "--data-dir", str(data_dir), "--port", str(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a starting process, not waiting for token expiry
        pytest.fail(f"server not ready after {timeout} s:\n{self.output}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(STOP_TIMEOUT)
        self._reader.join(5)
        return code

    def stop_gracefully(self) -> None:
        """SIGTERM: uvicorn finishes the lifespan, then re-raises the signal (exit -15)."""
        code = self.stop(signal.SIGTERM)
        assert code in (0, -signal.SIGTERM), (code, self.output)
        assert "Application shutdown complete" in self.output

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)


def admin_passwords(server: ServerProcess) -> list[str]:
    return [
        line.removeprefix(PASSWORD_LINE) for line in server.lines if line.startswith(PASSWORD_LINE)
    ]


def login(base: str, username: str, password: str) -> dict[str, Any]:
    r = httpx.post(base + "/api/v1/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def verify_both_ways(base: str, token: str) -> dict[str, Any]:
    """Verify with our SDK and with PyJWT, each fetching the JWKS over HTTP."""
    jwks_url = base + "/.well-known/jwks.json"
    ours = Verifier(RemoteJWKS(jwks_url), issuer=base, audience=base).verify(token)
    key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    theirs: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=base,
        issuer=base,
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert ours == theirs
    return ours


def kids(base: str) -> set[str]:
    return {k["kid"] for k in httpx.get(base + "/.well-known/jwks.json").json()["keys"]}


def check_http_hardening(base: str) -> None:
    """What only a real HTTP server shows: a chunked body counted, headers on the wire."""

    def chunks() -> Iterator[bytes]:
        yield b'{"username": "admin", "password": "'
        for _ in range(20):
            yield b"a" * 4096

    r = httpx.post(
        base + "/api/v1/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers  # an http issuer
    assert "server" not in r.headers  # uvicorn does not advertise itself
    assert httpx.get(base + "/readyz").status_code == 200


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "fresh" / "data"  # not there yet: serve creates it


@pytest.fixture
def port() -> int:
    return free_port()


# -- bootstrap, in process ------------------------------------------------------------------
@pytest.mark.anyio
async def test_bootstrap_creates_the_admin_once_with_a_generated_password(ctx: AppContext) -> None:
    password = await bootstrap(ctx)
    assert password is not None and len(password) == 24
    admin = await ctx.store.get_user_by_name("admin")
    assert admin is not None and admin.roles == ("admin",)
    assert ctx.passwords.verify(admin.password_hash, password)
    assert await bootstrap(ctx) is None  # second start: nothing
    assert [u.username for u in await ctx.store.list_users()] == ["admin"]
    events = await ctx.store.list_audit(limit=100)
    assert events and all(password not in repr(e) for e in events)


@pytest.mark.anyio
async def test_bootstrap_uses_a_configured_password_and_never_returns_it(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx.settings, "admin_password", SecretStr("configured admin password"))
    assert await bootstrap(ctx) is None
    admin = await ctx.store.get_user_by_name("admin")
    assert admin is not None
    assert ctx.passwords.verify(admin.password_hash, "configured admin password")


@pytest.mark.anyio
async def test_bootstrap_leaves_a_store_with_users_alone(ctx: AppContext) -> None:
    await Accounts(ctx).create("alice", "correct horse battery staple", roles=["admin"])
    assert await bootstrap(ctx) is None
    assert await ctx.store.get_user_by_name("admin") is None


# -- real processes ------------------------------------------------------------------------
@pytest.mark.slow  # a real process
def assert_audit_line(server: ServerProcess, event: str, **fields: str) -> None:
    """The audit trail reaches the process's output: one JSON object per line."""
    deadline = time.monotonic() + STOP_TIMEOUT  # the line is written after the response
    while time.monotonic() < deadline:
        for line in list(server.lines):
            if line.startswith("{") and json.loads(line).get("event") == event:
                record = json.loads(line)
                assert {k: record.get(k) for k in fields} == fields, record
                assert "timestamp" in record and "password" not in line
                return
        time.sleep(0.05)
    pytest.fail(f"no {event} audit line in:\n{server.output}")


def test_serve_from_nothing_then_restart_with_the_same_state(
    tmp_path: Path, data_dir: Path, port: int
) -> None:
    env = server_env(tmp_path)
    with ServerProcess(data_dir, port, env) as first:
        first.wait_ready()
        passwords = admin_passwords(first)
        assert len(passwords) == 1 and len(passwords[0]) >= 20
        password = passwords[0]
        assert first.output.count(password) == 1  # printed once, never logged
        assert f"issuer: {first.base}" in first.lines

        tokens = login(first.base, "admin", password)
        claims = verify_both_ways(first.base, tokens["access_token"])
        assert claims["roles"] == ["admin"] and claims["iss"] == first.base
        assert_audit_line(first, "login.succeeded", username="admin", level="info")
        keys_before = kids(first.base)
        check_http_hardening(first.base)
        first.stop_gracefully()

    assert (data_dir / "tokenward.db").is_file() and (data_dir / "keys.json").is_file()
    assert stat.S_IMODE((data_dir / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700

    with ServerProcess(data_dir, port, env) as second:
        second.wait_ready()
        assert admin_passwords(second) == []  # the admin exists: nothing new to print
        assert password not in second.output
        assert kids(second.base) == keys_before  # the same signing keys
        assert verify_both_ways(second.base, tokens["access_token"])["sub"] == claims["sub"]
        me = httpx.get(
            second.base + "/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert me.status_code == 200 and me.json()["username"] == "admin"
        assert login(second.base, "admin", password)["access_token"]
        second.stop_gracefully()


@pytest.mark.slow  # a real process
def test_prod_with_insecure_settings_refuses_to_start(
    tmp_path: Path, data_dir: Path, port: int
) -> None:
    result = subprocess.run(
        cli("serve", "--profile", "prod", "--data-dir", str(data_dir), "--port", str(port)),
        env=server_env(tmp_path, TOKENWARD_COOKIE_SECURE="false"),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for problem in (
        "issuer must be an https:// URL",
        "cookie_secure must be on",
        "TOKENWARD_MASTER_KEY must be set",
    ):
        assert problem in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not data_dir.exists()  # refused before touching anything


@pytest.mark.slow  # a real process
def test_migrate_creates_and_upgrades_the_database(tmp_path: Path, data_dir: Path) -> None:
    for _ in range(2):  # idempotent
        result = subprocess.run(
            cli("migrate", "--data-dir", str(data_dir)),
            env=server_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "migrations applied" in result.stdout
    assert (data_dir / "tokenward.db").is_file()


@pytest.mark.slow  # a real process
def test_the_asgi_entry_point_reads_its_settings_from_the_environment(
    tmp_path: Path, data_dir: Path, port: int
) -> None:
    base = f"http://127.0.0.1:{port}"
    env = server_env(
        tmp_path,
        TOKENWARD_DATA_DIR=str(data_dir),
        TOKENWARD_ISSUER=base,
        TOKENWARD_ADMIN_PASSWORD="configured admin password",
    )
    data_dir.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tokenward.server.asgi:app",
        "--port",
        str(port),
        "--no-server-header",
    ]
    with ServerProcess(data_dir, port, env, command) as server:
        server.wait_ready()
        tokens = login(base, "admin", "configured admin password")  # bootstrapped from env
        assert verify_both_ways(base, tokens["access_token"])["roles"] == ["admin"]
        assert "configured admin password" not in server.output
        server.stop_gracefully()
