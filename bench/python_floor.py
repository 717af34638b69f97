"""A yardstick, not a product: refresh rotation with reuse detection in the least Python can do.

bench/http_refresh.py and bench/http_login.py run it beside tokenward and Express (targets
``floor``, ``floor2``) to show what any Python server on this machine can reach for the
same job, so that tokenward's figures can be read against the language's ceiling as well
as against Node and the argon2 floor:

- a bare ASGI callable under uvicorn with the same options as ``tokenward serve``
  (httptools, uvloop): no framework, no middleware, no routing beyond two paths;
- the stdlib ``sqlite3`` driver, called inline on the event loop (no thread hand-off),
  WAL journal, ``synchronous`` from ``FLOOR_SYNC`` (default FULL, as tokenward);
- a login verifies the password with argon2id (argon2-cffi, ``FLOOR_ARGON2`` = "m,t,p",
  default tokenward's OWASP parameters) in a pool of one thread per core, as tokenward
  does, then starts a family with its first token in one transaction;
- one transaction per refresh: read the token and its family by the token's SHA-256;
  a used token revokes the family (reuse detection); else mark it used, insert its
  successor, touch the family;
- then an ES256 ``at+jwt`` signed with ``cryptography``.

What it leaves out, each of which tokenward does: rate limits and lockout, a user
table (one account, its hash in memory), expiry and idle checks on the family, the
user's state and token version, scope and client binding, an audit row and line,
metrics, security headers, error shapes, request size limits. So it is an upper bound:
a real server with those can only be slower.

    FLOOR_DB=/tmp/floor.db uvicorn python_floor:app --app-dir bench --port 8001
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

USER = os.environ.get("BENCH_USER", "bench")
PASSWORD = os.environ.get("BENCH_PASSWORD", "bench-pass-9876")
TTL = 7 * 86400
_KEY = ec.generate_private_key(ec.SECP256R1())
_ECDSA = ec.ECDSA(hashes.SHA256())
_M, _T, _P = (int(x) for x in os.environ.get("FLOOR_ARGON2", "19456,2,1").split(","))
_HASHER = PasswordHasher(
    time_cost=_T, memory_cost=_M, parallelism=_P, hash_len=32, salt_len=16, type=Type.ID
)
_STORED = _HASHER.hash(PASSWORD)
_HASHING = ThreadPoolExecutor(os.cpu_count() or 1)  # argon2-cffi releases the GIL


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_HEADER = _b64(orjson.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "floor"}))


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={os.environ.get('FLOOR_SYNC', 'FULL')}")
    conn.executescript(
        "CREATE TABLE IF NOT EXISTS families (id TEXT PRIMARY KEY, user TEXT NOT NULL,"
        " revoked INTEGER NOT NULL DEFAULT 0, last_used REAL NOT NULL);"
        "CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, family TEXT NOT NULL,"
        " used INTEGER NOT NULL DEFAULT 0, expires REAL NOT NULL);"
        "CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);"
    )
    return conn


_DB = _connect()


def _access_token(sub: str, family: str, now: float) -> str:
    claims = {"iss": "floor", "sub": sub, "aud": "floor", "iat": int(now), "exp": int(now) + 900}
    claims |= {"jti": secrets.token_urlsafe(16), "sid": family}
    signing_input = _HEADER + b"." + _b64(orjson.dumps(claims))
    r, s = decode_dss_signature(_KEY.sign(signing_input, _ECDSA))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


def _new_token(family: str, now: float) -> str:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).digest()
    _DB.execute(
        "INSERT INTO tokens (hash, family, expires) VALUES (?, ?, ?)", (digest, family, now + TTL)
    )
    return token


def _pair(sub: str, family: str, token: str, now: float) -> bytes:
    access = _access_token(sub, family, now)
    return orjson.dumps(
        {"access_token": access, "token_type": "Bearer", "expires_in": 900, "refresh_token": token}
    )


_WRONG = 401, b'{"error":"invalid username or password"}'


async def login(body: dict[str, Any]) -> tuple[int, bytes]:
    password = body.get("password")
    if body.get("username") != USER or type(password) is not str:
        return _WRONG
    try:
        await asyncio.get_running_loop().run_in_executor(
            _HASHING, _HASHER.verify, _STORED, password
        )
    except VerifyMismatchError:
        return _WRONG
    now, family = time.time(), uuid.uuid4().hex
    _DB.execute("BEGIN IMMEDIATE")
    try:
        _DB.execute(
            "INSERT INTO families (id, user, last_used) VALUES (?, ?, ?)", (family, USER, now)
        )
        token = _new_token(family, now)
        _DB.execute("COMMIT")
    except BaseException:
        _DB.execute("ROLLBACK")
        raise
    return 200, _pair(USER, family, token, now)


_REFUSED = 400, b'{"error":"invalid_grant"}'


async def refresh(body: dict[str, Any]) -> tuple[int, bytes]:
    presented = body.get("refresh_token")
    if type(presented) is not str:
        return 400, b'{"error":"invalid_request"}'
    digest, now = hashlib.sha256(presented.encode()).digest(), time.time()
    _DB.execute("BEGIN IMMEDIATE")
    try:
        outcome = _rotate(digest, now)
        _DB.execute("COMMIT")
    except BaseException:
        _DB.execute("ROLLBACK")
        raise
    return _REFUSED if outcome is None else (200, _pair(*outcome, now))


def _rotate(digest: bytes, now: float) -> tuple[str, str, str] | None:
    row = _DB.execute(
        "SELECT t.used, t.expires, t.family, f.user, f.revoked FROM tokens t"
        " JOIN families f ON f.id = t.family WHERE t.hash = ?",
        (digest,),
    ).fetchone()
    if row is None or row[4] or now >= row[1]:
        return None
    used, _, family, user, _ = row
    if used:  # reuse: the whole family dies
        _DB.execute("UPDATE families SET revoked = 1 WHERE id = ?", (family,))
        return None
    _DB.execute("UPDATE tokens SET used = 1 WHERE hash = ? AND used = 0", (digest,))
    token = _new_token(family, now)
    _DB.execute("UPDATE families SET last_used = ? WHERE id = ?", (now, family))
    return user, family, token


_ROUTES = {"/login": login, "/refresh": refresh}
_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    if scope["path"] == "/healthz":
        status, payload = 200, b'{"status":"ok"}'
        await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": payload})
        return
    handler = _ROUTES.get(scope["path"])
    try:
        data = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        data = None
    if handler is None or scope["method"] != "POST" or type(data) is not dict:
        status, payload = 404, b'{"error":"not_found"}'
    else:
        status, payload = await handler(data)
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": payload})
