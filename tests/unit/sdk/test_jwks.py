"""RemoteJWKS: only the configured URL, max-age caching, cooldown, last-good on failure (R23)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock, Issuer, KeyNotFound, KeyRing, RemoteJWKS, Verifier
from tokenward.errors import JWKSError
from tokenward.sdk.jwks import cache_lifetime

from ...conftest import AUD, ISS, T0

URL = "https://issuer.example/.well-known/jwks.json"


class FakeIssuer:
    """Answers JWKS requests from a KeyRing; counts and records requests."""

    def __init__(self, ring: KeyRing, cache_control: str = "max-age=300") -> None:
        self.ring, self.cache_control = ring, cache_control
        self.requests: list[str] = []
        self.status = 200
        self.body: bytes | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if self.status != 200:
            return httpx.Response(self.status)
        body = self.body if self.body is not None else json.dumps(self.ring.jwks()).encode()
        return httpx.Response(200, content=body, headers={"cache-control": self.cache_control})


@pytest.fixture
def setup(clock: FrozenClock) -> tuple[KeyRing, FakeIssuer, RemoteJWKS]:
    ring = KeyRing()
    ring.generate("ES256", T0)
    fake = FakeIssuer(ring)
    client = httpx.Client(transport=httpx.MockTransport(fake.handler))
    return ring, fake, RemoteJWKS(URL, clock=clock, cooldown=30, client=client)


def test_fetches_once_and_honours_max_age(setup: Any, clock: FrozenClock) -> None:
    ring, fake, remote = setup
    kid = ring.signing_key().kid
    assert remote.get(kid) is not None and remote.get(kid) is not None
    assert len(fake.requests) == 1
    clock.advance(299)
    remote.get(kid)
    assert len(fake.requests) == 1
    clock.advance(1)
    remote.get(kid)
    assert len(fake.requests) == 2
    assert set(fake.requests) == {URL}  # only ever the configured URL


def test_unknown_kid_refetches_at_most_once_per_cooldown(setup: Any, clock: FrozenClock) -> None:
    _ring, fake, remote = setup
    for i in range(100):
        assert remote.get(f"random{i}") is None
    assert len(fake.requests) == 1
    clock.advance(30)
    remote.get("another")
    assert len(fake.requests) == 2


def test_rotated_key_is_picked_up_via_unknown_kid(setup: Any, clock: FrozenClock) -> None:
    ring, fake, remote = setup
    verifier = Verifier(remote, issuer=ISS, audience=AUD, clock=clock)
    issuer = Issuer(ring, issuer=ISS, clock=clock)
    verifier.verify(issuer.issue("alice", AUD))
    ring.generate("ES256", T0)  # the issuer rotates
    token = issuer.issue("alice", AUD)
    with pytest.raises(KeyNotFound):  # within the cooldown: no refetch
        verifier.verify(token)
    clock.advance(31)
    assert verifier.verify(token)["sub"] == "alice"
    assert len(fake.requests) == 2


def test_failure_keeps_the_last_good_set(setup: Any, clock: FrozenClock) -> None:
    ring, fake, remote = setup
    kid = ring.signing_key().kid
    assert remote.get(kid) is not None
    fake.status = 503
    clock.advance(301)
    assert remote.get(kid) is not None
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"keys": 5}', b'{"keys": [{"kty": "RSA"}]}', b"x" * 600_000],
)
def test_bad_documents_are_refused(setup: Any, body: bytes) -> None:
    _ring, fake, remote = setup
    fake.body = body
    with pytest.raises(JWKSError):
        remote.refresh()
    assert remote.get("anything") is None


def test_mixed_or_duplicate_sets_are_refused(setup: Any) -> None:
    ring, fake, remote = setup
    jwk = ring.jwks()["keys"][0]
    fake.body = json.dumps({"keys": [jwk, jwk]}).encode()
    with pytest.raises(JWKSError, match="twice"):
        remote.refresh()
    oct_key = {"kty": "oct", "k": "A" * 43, "kid": "h", "alg": "HS256"}
    fake.body = json.dumps({"keys": [jwk, oct_key]}).encode()
    with pytest.raises(JWKSError, match="mix"):
        remote.refresh()


def test_redirects_are_not_followed(clock: FrozenClock) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://evil.example/jwks"})

    client = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=False)
    remote = RemoteJWKS(URL, clock=clock, client=client)
    with pytest.raises(JWKSError, match="302"):
        remote.refresh()
    assert seen == [URL]


@pytest.mark.parametrize("url", ["http://issuer.example/jwks", "file:///etc/passwd", "ftp://x/y"])
def test_plain_http_only_on_loopback(url: str) -> None:
    with pytest.raises(JWKSError):
        RemoteJWKS(url)
    RemoteJWKS("http://127.0.0.1:9/jwks")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=600", 600),
        ("public, max-age=10", 30),
        ("max-age=999999", 86400),
        ("no-store", 30),
        ("no-cache, max-age=600", 30),
        (None, 300),
        ("garbage", 300),
    ],
)
def test_cache_lifetime(header: str | None, expected: float) -> None:
    assert cache_lifetime(header, 300, 30, 86400) == expected


@pytest.fixture
def http_server() -> Iterator[Callable[[bytes], str]]:
    """A real HTTP server on loopback serving one body."""
    state: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state["body"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=60")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(body: bytes) -> str:
        state["body"] = body
        return f"http://127.0.0.1:{server.server_address[1]}/jwks.json"

    yield serve
    server.shutdown()
    server.server_close()


def test_over_a_real_socket(http_server: Callable[[bytes], str], clock: FrozenClock) -> None:
    ring = KeyRing()
    ring.generate("EdDSA", T0)
    url = http_server(json.dumps(ring.jwks()).encode())
    with RemoteJWKS(url, clock=clock) as remote:
        verifier = Verifier(remote, issuer=ISS, audience=AUD, clock=clock)
        token = Issuer(ring, issuer=ISS, clock=clock).issue("alice", AUD)
        assert verifier.verify(token)["sub"] == "alice"
    assert remote._client.is_closed
