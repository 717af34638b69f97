"""SECURITY.md R22–R24: revocation that survives re-encoding, key sets, one key one purpose."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.security.forge import (
    AUD,
    EC_SIZE,
    ISS,
    ORDERS,
    T0,
    b64,
    claims,
    ec_parts,
    ec_raw,
    jbytes,
    keyed,
    rejects,
    sign,
    unb64,
    with_sig,
)
from tokenward import (
    FrozenClock,
    Issuer,
    JWKSError,
    KeyPurpose,
    KeyRing,
    ManagedKey,
    RemoteJWKS,
    RevocationView,
    RotationPolicy,
    Verifier,
)
from tokenward.jose.jwk import import_jwks
from tokenward.rotation import apply_rotation

ES = keyed("ES256")


# -- R22 revocation keys on jti / tv / epoch, never on the token string -------------------
def _malleate(token: str, alg: str) -> str:
    """The other valid ECDSA signature of the same message: (r, s) -> (r, n - s)."""
    r, s = ec_parts(unb64(token.split(".")[2]))
    return with_sig(token, ec_raw(r, ORDERS[alg] - s, EC_SIZE[alg]))


@pytest.mark.parametrize("alg", list(EC_SIZE))
def test_r22_revoked_jti_covers_malleated_signature(clock: FrozenClock, alg: str) -> None:
    k = keyed(alg)
    revocation = RevocationView()
    v = k.verifier(clock, revocation=revocation)
    token = k.issue(clock)
    twin = _malleate(token, alg)
    assert twin != token
    assert v.verify(token) == v.verify(twin)  # a second valid encoding of the same token
    jti = v.verify(token)["jti"]
    revocation.deny(jti, T0 + 300)
    rejects(v, token, "revoked")  # from the cache
    rejects(v, twin, "revoked")
    rejects(k.verifier(clock, revocation=revocation), twin, "revoked")  # cold


def test_r22_deny_is_per_jti(clock: FrozenClock) -> None:
    revocation = RevocationView()
    v = ES.verifier(clock, revocation=revocation)
    a, b = ES.issue(clock), ES.issue(clock)
    revocation.deny(v.verify(a)["jti"], T0 + 300)
    rejects(v, a, "revoked")
    assert v.verify(b)["sub"] == "alice"
    revocation.deny(a, T0 + 300)  # the token string itself is not a revocation key
    assert v.verify(b)


def test_r22_token_version(clock: FrozenClock) -> None:
    revocation = RevocationView()
    v = ES.verifier(clock, revocation=revocation)
    old, untagged, new = (
        ES.issue(clock, token_version=0),
        ES.issue(clock),
        ES.issue(clock, token_version=1),
    )
    for t in (old, untagged, new):
        assert v.verify(t)
    revocation.set_token_version(ISS, "alice", 1)
    rejects(v, old, "revoked")
    rejects(v, untagged, "revoked")  # no tv counts as 0
    rejects(v, _malleate(old, "ES256"), "revoked")
    assert v.verify(new)["tv"] == 1
    other = Issuer(ES.ring, issuer=ISS, clock=clock).issue(
        "bob", AUD, client_id="c1", token_version=0
    )
    assert v.verify(other)["sub"] == "bob"


def test_r22_global_epoch(clock: FrozenClock) -> None:
    revocation = RevocationView()
    v = ES.verifier(clock, revocation=revocation)
    before = ES.issue(clock)
    assert v.verify(before)
    revocation.set_epoch(T0 + 1)
    rejects(v, before, "revoked")
    rejects(v, _malleate(before, "ES256"), "revoked")
    clock.advance(1)
    assert v.verify(ES.issue(clock))


def test_r22_removed_kid(clock: FrozenClock) -> None:
    revocation = RevocationView()
    v = ES.verifier(clock, revocation=revocation)
    token = ES.issue(clock)
    assert v.verify(token)
    revocation.remove_kid(ES.kid)
    rejects(v, token, "revoked")


# -- R23 key sets -------------------------------------------------------------------------
def _jwk(base: str, **over: Any) -> dict[str, Any]:
    return {**keyed(base).ring.jwks()["keys"][0], **over}


def _oct(kid: str = "h1") -> dict[str, Any]:
    return {"kty": "oct", "k": b64(secrets.token_bytes(32)), "alg": "HS256", "kid": kid}


@pytest.mark.parametrize(
    "keys",
    [
        [_jwk("ES256", kid="same"), _jwk("ES384", kid="same")],
        [_jwk("ES256"), _jwk("ES256")],
        [_oct("same"), _oct("same")],
        [_oct(), _jwk("RS256")],
        [_jwk("ES256"), _oct()],
        [_jwk("EdDSA"), _oct(), _jwk("ES384")],
    ],
    ids=["dup-kid", "dup-key", "dup-oct", "oct+rsa", "ec+oct", "okp+oct+ec"],
)
def test_r23_unsafe_key_sets_refused(clock: FrozenClock, keys: list[dict[str, Any]]) -> None:
    with pytest.raises(JWKSError):
        import_jwks({"keys": keys})
    with pytest.raises(JWKSError):
        Verifier({"keys": keys}, issuer=ISS, audience=AUD, clock=clock)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_r23_private_members_refused(clock: FrozenClock, alg: str) -> None:
    cls = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[alg]
    private = dict(cls.import_key(keyed(alg).private).as_dict(private=True))
    private.update(kid="leaked", alg=alg)
    assert "d" in private
    for jwk in (private, {**_jwk(alg), "d": private["d"]}):
        with pytest.raises(JWKSError):
            import_jwks({"keys": [jwk]})
        with pytest.raises(JWKSError):
            Verifier({"keys": [jwk]}, issuer=ISS, audience=AUD, clock=clock)


def test_r23_published_jwks_has_no_secrets() -> None:
    ring = KeyRing()
    ring.generate("ES256", T0)
    ring.generate("HS256", T0)
    for k in ring.jwks()["keys"]:
        assert k["kty"] != "oct"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & k.keys()


class _Server:
    """A mock JWKS endpoint that records every request."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks, self.seen = jwks, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "https://attacker.example/jwks"})
        return httpx.Response(200, json=self.jwks, headers={"Cache-Control": "max-age=600"})


URL = "https://issuer.example/.well-known/jwks.json"


def test_r23_remote_jwks_configured_url_only_cached_and_rate_limited(clock: FrozenClock) -> None:
    server = _Server(ES.ring.jwks())
    source = RemoteJWKS(
        URL, clock=clock, client=httpx.Client(transport=httpx.MockTransport(server))
    )
    v = Verifier(source, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    for _ in range(20):
        assert v.verify(ES.token())
    assert server.seen == [URL]  # fetched once, cached
    for i in range(50):  # a storm of unknown kids
        rejects(v, ES.token(ES.header(kid=f"random{i}")), "unknown_kid")
    rejects(v, ES.token(ES.header(jku="https://attacker.example/jwks")), "malformed")
    assert len(server.seen) <= 2
    assert set(server.seen) == {URL}  # never the jku, never anything else
    clock.advance(30)
    rejects(v, ES.token(ES.header(kid="random-again")), "unknown_kid")
    assert len(server.seen) <= 3


def test_r23_remote_jwks_does_not_follow_redirects(clock: FrozenClock) -> None:
    server = _Server(ES.ring.jwks())
    url = "https://issuer.example/moved"
    source = RemoteJWKS(
        url, clock=clock, client=httpx.Client(transport=httpx.MockTransport(server))
    )
    rejects(Verifier(source, issuer=ISS, audience=AUD, clock=clock), ES.token(), "unknown_kid")
    assert set(server.seen) == {url}


def test_r23_remote_jwks_must_be_https() -> None:
    for url in ("http://issuer.example/jwks", "file:///etc/jwks.json", "ftp://issuer.example/j"):
        with pytest.raises(JWKSError):
            RemoteJWKS(url)


def test_r23_retired_key_stays_published_until_its_tokens_expired(clock: FrozenClock) -> None:
    policy = RotationPolicy(alg="ES256", period=86400.0, publish_ahead=3600.0, max_token_ttl=600.0)
    ring = KeyRing()
    apply_rotation(ring, T0, policy)
    old = ring.signing_key()
    clock.now = T0 + policy.period - policy.publish_ahead
    apply_rotation(ring, clock.now, policy)  # the next key is published ahead of use
    clock.now = T0 + policy.period - 1
    last = Issuer(ring, issuer=ISS, clock=clock).issue("alice", AUD, ttl=600)
    clock.now = T0 + policy.period
    apply_rotation(ring, clock.now, policy)
    assert ring.signing_key().kid != old.kid
    exp_with_leeway = T0 + policy.period - 1 + 600 + 30
    while clock.now < exp_with_leeway:
        apply_rotation(ring, clock.now, policy)
        assert old.kid in {k["kid"] for k in ring.jwks()["keys"]}
        assert Verifier(ring.jwks(), issuer=ISS, audience=AUD, clock=clock).verify(last)
        clock.advance(60)
    clock.now = T0 + policy.period + policy.retire_after
    apply_rotation(ring, clock.now, policy)
    assert old.kid not in {k["kid"] for k in ring.jwks()["keys"]}


# -- R24 one key, one purpose -------------------------------------------------------------
def test_r24_encryption_keys_skipped(clock: FrozenClock) -> None:
    enc = _jwk("RS256", kid="enc1", use="enc", alg="RSA-OAEP-256")
    enc_sig_alg = _jwk("ES384", kid="enc2", use="enc")
    keys = import_jwks({"keys": [_jwk("ES256"), enc, enc_sig_alg]})
    assert set(keys) == {ES.kid}
    v = Verifier({"keys": [_jwk("ES256"), enc_sig_alg]}, issuer=ISS, audience=AUD, clock=clock)
    k384 = keyed("ES384")
    rejects(v, k384.token(k384.header(kid="enc2")), "unknown_kid")
    assert v.verify(ES.token())


def test_r24_refresh_key_never_verifies_access_tokens(clock: FrozenClock) -> None:
    ring = KeyRing()
    ring.generate("ES256", T0)
    refresh = ring.add(ManagedKey.create("ES256", T0, purpose=KeyPurpose.REFRESH))
    assert refresh.kid != ring.signing_key().kid
    assert ring.get(refresh.kid) is None
    assert refresh.kid not in {k["kid"] for k in ring.jwks()["keys"]}
    v = Verifier(ring, issuer=ISS, audience=AUD, clock=clock)
    h = b64(jbytes({"alg": "ES256", "kid": refresh.kid, "typ": "at+jwt"}))
    p = b64(jbytes(claims()))
    forged = f"{h}.{p}.{b64(sign('ES256', refresh.material, f'{h}.{p}'.encode()))}"
    rejects(v, forged, "unknown_kid")
