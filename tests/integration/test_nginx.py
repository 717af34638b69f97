"""nginx ``auth_request`` in front of a real ``tokenward serve``, with examples/nginx/nginx.conf.

One stack per module: tokenward (ServerProcess from test_serve.py), a tiny upstream
(http.server in a thread, recording what it received) and nginx rendered from the example
template, all on 127.0.0.1 and under tmp dirs. Expired tokens are signed with the
server's own key ring under a clock set in the past: nothing waits for expiry.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock, Issuer
from tokenward.keystore import load_keyring, master_key

from ..conftest import REPO
from .test_serve import ServerProcess, admin_passwords, free_port, login, server_env

NGINX = Path("/usr/sbin/nginx")
TEMPLATE = REPO / "examples" / "nginx" / "nginx.conf"
START_TIMEOUT = 15.0

pytestmark = [
    pytest.mark.slow,  # real processes
    pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (/usr/sbin/nginx)"),
]


# -- the upstream: answers "hello" and records what nginx sent it ----------------------------
class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]  # set on the subclass made per server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.seen.append({"method": self.command, "path": self.path, "headers": headers})
        self.seen[-1]["body"] = body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Seen-Subject", headers.get("x-auth-subject", "-"))
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


Upstream = tuple[int, list[dict[str, Any]]]  # its port, and what it received


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- tokenward -------------------------------------------------------------------------------
@dataclass
class Stack:
    base: str
    data_dir: Path
    password: str

    def issuer(self, clock: FrozenClock | None = None) -> Issuer:
        """An issuer on the server's own key ring, opened with its master key."""
        ring = load_keyring(self.data_dir, master_key(self.data_dir, create=False))
        kwargs: dict[str, Any] = {"clock": clock} if clock else {}
        return Issuer(ring, issuer=self.base, **kwargs)


@pytest.fixture(scope="module")
def tokenward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("tokenward")
    data_dir = tmp / "data"
    with ServerProcess(data_dir, free_port(), server_env(tmp)) as server:
        server.wait_ready()
        yield Stack(server.base, data_dir, admin_passwords(server)[0])


# -- nginx -----------------------------------------------------------------------------------
def render(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    assert "${" not in template, "a placeholder was left unset"
    return template


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nginx exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a starting process
    pytest.fail(f"nginx not listening on {port} after {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, tokenward: Stack, upstream: Upstream
) -> Iterator[str]:
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        render(
            TEMPLATE.read_text(),
            NGINX_LISTEN=f"127.0.0.1:{port}",
            TOKENWARD_ADDR=tokenward.base.removeprefix("http://"),
            UPSTREAM_ADDR=f"127.0.0.1:{upstream[0]}",
        )
    )
    # As root, workers would switch to "nobody" and lose the 0700 tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    directives = f"daemon off; pid {prefix / 'nginx.pid'}; {user}"
    cmd = [str(NGINX), "-c", str(conf), "-p", str(prefix), "-e", "stderr", "-g", directives]
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # SIGTERM: fast shutdown
        proc.wait(START_TIMEOUT)


def admin_token(stack: Stack) -> str:
    token: str = login(stack.base, "admin", stack.password)["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


INVALID = 'Bearer realm="tokenward", error="invalid_token"'


# -- the tests -------------------------------------------------------------------------------
def test_a_valid_token_reaches_the_upstream_with_who_it_is(
    nginx: str, tokenward: Stack, upstream: Upstream
) -> None:
    token = admin_token(tokenward)
    me = httpx.get(tokenward.base + "/api/v1/me", headers=bearer(token)).json()
    forged = {"X-Auth-Subject": "root", "X-Auth-Scopes": "admin", "X-Auth-Roles": "root"}
    r = httpx.get(nginx + "/hello", headers={**bearer(token), **forged})
    assert r.status_code == 200 and r.text == "hello"
    assert r.headers["x-seen-subject"] == me["id"]
    seen = upstream[1][-1]["headers"]
    assert seen["x-auth-subject"] == me["id"]
    assert seen["x-auth-roles"] == "admin" and seen["x-auth-client-id"] == "tokenward"
    assert "x-auth-scopes" not in seen  # none granted: the forged header is dropped too


def test_a_post_body_reaches_the_upstream_and_never_tokenward(
    nginx: str, tokenward: Stack, upstream: Upstream
) -> None:
    # tokenward answers GET/HEAD only: a 200 shows the subrequest went out as a GET.
    token = admin_token(tokenward)
    r = httpx.post(nginx + "/orders", headers=bearer(token), content=b"x=1")
    assert r.status_code == 200
    assert upstream[1][-1]["method"] == "POST" and upstream[1][-1]["body"] == b"x=1"
    # The next subrequest reuses the kept-alive connection to tokenward: no stray
    # Content-Length may have announced a body that never came.
    for _ in range(3):
        assert httpx.get(nginx + "/hello", headers=bearer(token)).status_code == 200


def test_no_token_is_401_with_a_bare_challenge(nginx: str) -> None:
    r = httpx.get(nginx + "/hello")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="tokenward"']


def test_an_expired_token_is_401(nginx: str, tokenward: Stack) -> None:
    past = FrozenClock(time.time() - 7200)
    token = tokenward.issuer(past).issue("svc-1", tokenward.base, ttl=600)
    r = httpx.get(nginx + "/hello", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == [INVALID]


def test_a_tampered_token_is_401(nginx: str, tokenward: Stack) -> None:
    head, payload, sig = admin_token(tokenward).split(".")
    forged = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    r = httpx.get(nginx + "/hello", headers=bearer(f"{head}.{forged}.{sig}"))
    assert r.status_code == 401


def test_a_logged_out_token_is_401_at_once(nginx: str, tokenward: Stack) -> None:
    token = admin_token(tokenward)
    assert httpx.get(nginx + "/hello", headers=bearer(token)).status_code == 200
    out = httpx.post(tokenward.base + "/api/v1/logout", headers=bearer(token))
    assert out.status_code == 204
    r = httpx.get(nginx + "/hello", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == INVALID


def test_a_route_requiring_a_scope(nginx: str, tokenward: Stack, upstream: Upstream) -> None:
    r = httpx.get(nginx + "/admin/users", headers=bearer(admin_token(tokenward)))
    assert r.status_code == 403
    assert r.headers.get_list("www-authenticate") == [
        'Bearer realm="tokenward", error="insufficient_scope", scope="admin"'
    ]
    scoped = tokenward.issuer().issue(
        "svc-2", tokenward.base, scope="read admin", client_id="ops-console"
    )
    ok = httpx.get(nginx + "/admin/users", headers=bearer(scoped))
    assert ok.status_code == 200 and ok.headers["x-seen-subject"] == "svc-2"
    seen = upstream[1][-1]["headers"]
    assert seen["x-auth-scopes"] == "read admin" and seen["x-auth-client-id"] == "ops-console"
