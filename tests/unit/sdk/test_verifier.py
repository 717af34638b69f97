"""Verifier.from_issuer: RFC 8414 discovery, the §3.3 issuer check, JWKS at start-up."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tokenward import FrozenClock, Issuer, KeyRing, RevocationView, RevokedToken, Verifier
from tokenward.errors import ConfigError, JWKSError
from tokenward.sdk.verifier import discover, from_issuer, metadata_url

from ...conftest import AUD, T0

ISSUER = "https://auth.example/tenant"
META = "https://auth.example/.well-known/oauth-authorization-server/tenant"
JWKS = "https://keys.example/jwks.json"


class FakeServer:
    """Answers the metadata and JWKS URLs from a key ring; records every request."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.meta: Any = {"issuer": ISSUER, "jwks_uri": JWKS}
        self.meta_response: httpx.Response | None = None
        self.jwks_status = 200
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url == META:
            return self.meta_response or httpx.Response(200, content=json.dumps(self.meta))
        if url == JWKS and self.jwks_status == 200:
            return httpx.Response(200, json=self.ring.jwks())
        return httpx.Response(self.jwks_status if url == JWKS else 404)


@pytest.fixture
def server(ring: KeyRing) -> FakeServer:
    return FakeServer(ring)


@pytest.fixture
def http(server: FakeServer) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(server))


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        ("https://a.example", "https://a.example/.well-known/oauth-authorization-server"),
        ("https://a.example/", "https://a.example/.well-known/oauth-authorization-server"),
        ("https://a.example/t/1/", "https://a.example/.well-known/oauth-authorization-server/t/1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/.well-known/oauth-authorization-server"),
    ],
)
def test_metadata_url_follows_rfc8414_section_3_1(issuer: str, url: str) -> None:
    assert metadata_url(issuer) == url


@pytest.mark.parametrize(
    "issuer",
    ["http://auth.example", "https://a.example?x=1", "https://a.example#f", "auth.example"],
)
def test_metadata_url_refuses_unsafe_issuers(issuer: str) -> None:
    with pytest.raises(ConfigError):
        metadata_url(issuer)


def test_from_issuer_discovers_the_keys_and_verifies(
    ring: KeyRing, server: FakeServer, http: httpx.Client
) -> None:
    clock = FrozenClock(T0)
    verifier = Verifier.from_issuer(ISSUER, audience=AUD, client=http, clock=clock, leeway=5)
    assert server.requests == [META, JWKS]  # both fetched at start-up
    token = Issuer(ring, issuer=ISSUER, clock=clock).issue("alice", AUD)
    assert verifier.verify(token)["sub"] == "alice"
    assert server.requests == [META, JWKS]  # verify used the cached set


def test_the_issuer_must_match_exactly(server: FakeServer, http: httpx.Client) -> None:
    for claimed in (ISSUER + "/", ISSUER.upper(), "https://evil.example/tenant", None):
        server.meta = {"issuer": claimed, "jwks_uri": JWKS}
        with pytest.raises(JWKSError, match="RFC 8414"):
            from_issuer(ISSUER, audience=AUD, client=http)
    assert JWKS not in server.requests  # a mismatched document is never followed


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(500), "HTTP 500"),
        (httpx.Response(302, headers={"location": JWKS}), "HTTP 302"),  # no redirects
        (httpx.Response(200, content=b"<html>"), "not JSON"),
        (httpx.Response(200, content=b"[]"), "not a JSON object"),
        (httpx.Response(200, content=b'{"issuer": "' + ISSUER.encode() + b'"}'), "jwks_uri"),
        (httpx.Response(200, content=b" " * 300_000), "too large"),
    ],
)
def test_bad_metadata_is_refused(
    server: FakeServer, http: httpx.Client, response: httpx.Response, message: str
) -> None:
    server.meta_response = response
    with pytest.raises(JWKSError, match=message):
        discover(ISSUER, client=http)


def test_an_unreachable_issuer_is_a_jwks_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(JWKSError, match="ConnectError"):
        discover(ISSUER, client=httpx.Client(transport=httpx.MockTransport(refuse)))


def test_a_jwks_that_fails_at_start_up_fails_from_issuer(
    server: FakeServer, http: httpx.Client
) -> None:
    server.jwks_status = 503
    with pytest.raises(JWKSError, match="HTTP 503"):
        from_issuer(ISSUER, audience=AUD, client=http)


def test_the_jwks_uri_must_be_https(server: FakeServer, http: httpx.Client) -> None:
    server.meta = {"issuer": ISSUER, "jwks_uri": "http://keys.example/jwks.json"}
    with pytest.raises(JWKSError, match="https"):
        from_issuer(ISSUER, audience=AUD, client=http)


def test_revocation_feed_and_options_reach_the_verifier(
    ring: KeyRing, server: FakeServer, http: httpx.Client
) -> None:
    feed = RevocationView()
    clock = FrozenClock(T0)
    verifier = from_issuer(
        ISSUER,
        audience=AUD,
        client=http,
        clock=clock,
        revocation_feed=feed,
        jwks_options={"cooldown": 60.0},
        cache_size=0,
    )
    assert verifier.revocation is feed
    token = Issuer(ring, issuer=ISSUER, clock=clock).issue("alice", AUD, token_version=0)
    feed.set_token_version(ISSUER, "alice", 1)
    with pytest.raises(RevokedToken):
        verifier.verify(token)


def test_from_issuer_builds_the_calling_class(server: FakeServer, http: httpx.Client) -> None:
    class MyVerifier(Verifier):
        pass

    assert type(MyVerifier.from_issuer(ISSUER, audience=AUD, client=http)) is MyVerifier
