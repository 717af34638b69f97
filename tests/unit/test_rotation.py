"""rotation.rotate with a frozen clock: publish-before-use, retirement timing, JWKS at each step."""

from __future__ import annotations

import itertools

import pytest

from tokenward import FrozenClock, Issuer, KeyPurpose, KeyRing, KeyState, ManagedKey, Verifier
from tokenward.rotation import DAY, Generate, RotationPolicy, apply_rotation, rotate

from ..conftest import AUD, ISS, T0

POLICY = RotationPolicy(alg="ES256", period=10 * DAY, publish_ahead=DAY, max_token_ttl=3600)


def _gen() -> Generate:
    counter = itertools.count()

    def generate(alg: str, now: float) -> ManagedKey:
        return ManagedKey.create(alg, now, state=KeyState.NEXT, kid=f"k{next(counter)}")

    return generate


def _states(ring: KeyRing) -> dict[str, str]:
    return {k.kid: str(k.state) for k in ring}


def _published(ring: KeyRing) -> list[str]:
    return sorted(j["kid"] for j in ring.jwks()["keys"])


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing()


def test_first_step_creates_an_active_key(ring: KeyRing) -> None:
    changes = apply_rotation(ring, T0, POLICY, _gen())
    assert changes == ["activated k0"]
    assert _states(ring) == {"k0": "active"}
    assert _published(ring) == ["k0"]


def test_full_cycle_publishes_before_use_and_retires_after_ttl(ring: KeyRing) -> None:
    gen = _gen()
    apply_rotation(ring, T0, POLICY, gen)
    # Before period - publish_ahead: nothing happens.
    assert apply_rotation(ring, T0 + 8 * DAY, POLICY, gen) == []
    # publish_ahead before the period ends, the next key is published but does not sign.
    assert apply_rotation(ring, T0 + 9 * DAY, POLICY, gen) == ["published k1"]
    assert _states(ring) == {"k0": "active", "k1": "next"}
    assert _published(ring) == ["k0", "k1"]
    assert ring.signing_key().kid == "k0"
    # At the period the next key takes over; the old one keeps verifying.
    changes = apply_rotation(ring, T0 + 10 * DAY, POLICY, gen)
    assert changes == ["retiring k0", "activated k1"]
    assert ring.signing_key().kid == "k1"
    assert _published(ring) == ["k0", "k1"]
    # The retiring key stays published until max_token_ttl + leeway after it last signed.
    almost = T0 + 10 * DAY + POLICY.max_token_ttl + POLICY.leeway - 1
    assert "retired k0" not in apply_rotation(ring, almost, POLICY, gen)
    assert "k0" in _published(ring)
    assert apply_rotation(ring, almost + 1, POLICY, gen) == ["retired k0"]
    assert _published(ring) == ["k1"]
    assert ring.get("k0") is None
    # Retired keys are dropped after keep_retired.
    later = almost + 1 + POLICY.keep_retired
    assert "dropped k0" in apply_rotation(ring, later, POLICY, gen)
    assert "k0" not in _states(ring)


def test_next_key_never_signs_before_it_was_published_long_enough(ring: KeyRing) -> None:
    gen = _gen()
    apply_rotation(ring, T0, POLICY, gen)
    # The server was down: first step long after the period. The next key is only published.
    assert apply_rotation(ring, T0 + 40 * DAY, POLICY, gen) == ["published k1"]
    assert ring.signing_key().kid == "k0"
    assert apply_rotation(ring, T0 + 40.5 * DAY, POLICY, gen) == []
    assert apply_rotation(ring, T0 + 41 * DAY, POLICY, gen) == [
        "retiring k0",
        "activated k1",
    ]


def test_rotate_is_pure(ring: KeyRing) -> None:
    gen = _gen()
    apply_rotation(ring, T0, POLICY, gen)
    before = ring.keys
    result = rotate(before, T0 + 9 * DAY, POLICY, gen)
    assert ring.keys == before  # the input is untouched
    assert [k.kid for k in result.keys] == ["k0", "k1"]


def test_other_purposes_pass_through(ring: KeyRing) -> None:
    ring.generate("ES256", T0, purpose=KeyPurpose.REFRESH)
    apply_rotation(ring, T0, POLICY, _gen())
    assert ring.signing_key(KeyPurpose.REFRESH).purpose is KeyPurpose.REFRESH
    assert ring.signing_key().kid == "k0"


def test_tokens_signed_before_rotation_verify_until_retirement(ring: KeyRing) -> None:
    clock = FrozenClock(T0)
    gen = _gen()
    apply_rotation(ring, clock(), POLICY, gen)
    issuer = Issuer(ring, issuer=ISS, clock=clock, max_ttl=3600)
    verifier = Verifier(ring, issuer=ISS, audience=AUD, clock=clock, leeway=0)
    clock.advance(9 * DAY)
    apply_rotation(ring, clock(), POLICY, gen)
    clock.advance(DAY - 60)
    old = issuer.issue("alice", AUD, ttl=3600)  # last token from k0, a minute before rotation
    clock.advance(60)
    apply_rotation(ring, clock(), POLICY, gen)
    new = issuer.issue("alice", AUD)
    assert verifier.verify(old)["sub"] == "alice"
    assert verifier.verify(new)["sub"] == "alice"
    clock.advance(3000)
    apply_rotation(ring, clock(), POLICY, gen)
    assert verifier.verify(old)["sub"] == "alice"  # k0 still published


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"publish_ahead": 0}, "publish_ahead"),
        ({"publish_ahead": 11 * DAY, "period": 10 * DAY}, "publish_ahead"),
        ({"max_token_ttl": 0}, "max_token_ttl"),
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RotationPolicy(**kwargs)  # type: ignore[arg-type]
