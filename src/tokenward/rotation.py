"""Pure key rotation: ``rotate(keys, now, policy, generate) -> RotationResult``.

The schedule (RFC 8725 §3.5 and RFC 7517 §5 leave it to us; this follows the usual
"publish, then sign, then keep publishing" discipline):

1. ``publish_ahead`` before the active key reaches ``period``, a NEXT key is generated and
   published, so every verifier's JWKS cache has it before the first token it signs.
2. When the active key reaches ``period`` (and the next key has been published for at
   least ``publish_ahead``), the next key becomes ACTIVE and the old one RETIRING.
3. A RETIRING key stays published for ``max_token_ttl`` + ``leeway`` after it last signed,
   so every token it signed has expired before it leaves the JWKS; then it is RETIRED.
4. RETIRED keys are dropped from the ring after ``keep_retired``.

The function has no clock and no randomness of its own: ``now`` and ``generate`` are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tokenward.keys import KeyPurpose, KeyRing, KeyState, ManagedKey

__all__ = ["RotationPolicy", "RotationResult", "apply_rotation", "rotate"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    alg: str = "ES256"
    period: float = 30 * DAY
    publish_ahead: float = DAY
    max_token_ttl: float = 3600.0  # longest lifetime of any token this key signs
    leeway: float = 30.0
    keep_retired: float = 30 * DAY
    purpose: KeyPurpose = KeyPurpose.ACCESS

    def __post_init__(self) -> None:
        if not (0 < self.publish_ahead < self.period):
            raise ValueError("publish_ahead must be positive and shorter than period")
        if self.max_token_ttl <= 0 or self.leeway < 0:
            raise ValueError("max_token_ttl must be positive and leeway not negative")

    @property
    def retire_after(self) -> float:
        return self.max_token_ttl + self.leeway


@dataclass(frozen=True, slots=True)
class RotationResult:
    keys: tuple[ManagedKey, ...]
    changes: list[str] = field(default_factory=list)


Generate = Callable[[str, float], ManagedKey]


def rotate(
    keys: Sequence[ManagedKey], now: float, policy: RotationPolicy, generate: Generate
) -> RotationResult:
    """One rotation step for ``policy.purpose``; keys of other purposes pass through."""
    mine = [k for k in keys if k.purpose is policy.purpose]
    others = [k for k in keys if k.purpose is not policy.purpose]
    changes: list[str] = []
    mine = _retire(mine, now, policy, changes)
    mine = _promote(mine, now, policy, changes)
    mine = _prepare_next(mine, now, policy, generate, changes)
    return RotationResult(tuple(others + mine), changes)


def _retire(
    keys: list[ManagedKey], now: float, policy: RotationPolicy, changes: list[str]
) -> list[ManagedKey]:
    out = []
    for k in keys:
        if k.state is KeyState.RETIRING and now >= (k.retiring_at or 0) + policy.retire_after:
            k = k.moved(KeyState.RETIRED, now)
            changes.append(f"retired {k.kid}")
        if k.state is KeyState.RETIRED and now >= (k.retired_at or 0) + policy.keep_retired:
            changes.append(f"dropped {k.kid}")
            continue
        out.append(k)
    return out


def _promote(
    keys: list[ManagedKey], now: float, policy: RotationPolicy, changes: list[str]
) -> list[ManagedKey]:
    active = next((k for k in keys if k.state is KeyState.ACTIVE), None)
    nxt = next((k for k in keys if k.state is KeyState.NEXT), None)
    if nxt is None:
        return keys
    due = active is None or now >= (active.activated_at or 0) + policy.period
    # Publish-before-use: the next key must have been in the JWKS for publish_ahead.
    published_long_enough = now >= nxt.created_at + policy.publish_ahead
    if not (due and (published_long_enough or active is None)):
        return keys
    out = []
    for k in keys:
        if k is active:
            k = k.moved(KeyState.RETIRING, now)
            changes.append(f"retiring {k.kid}")
        elif k is nxt:
            k = k.moved(KeyState.ACTIVE, now)
            changes.append(f"activated {k.kid}")
        out.append(k)
    return out


def _prepare_next(
    keys: list[ManagedKey],
    now: float,
    policy: RotationPolicy,
    generate: Generate,
    changes: list[str],
) -> list[ManagedKey]:
    active = next((k for k in keys if k.state is KeyState.ACTIVE), None)
    if any(k.state is KeyState.NEXT for k in keys):
        return keys
    if active is None:
        # First start: nobody can hold a token of ours yet, so the key may sign at once.
        key = generate(policy.alg, now).moved(KeyState.ACTIVE, now)
        changes.append(f"activated {key.kid}")
        return [*keys, key]
    if now >= (active.activated_at or 0) + policy.period - policy.publish_ahead:
        key = generate(policy.alg, now)
        if key.state is not KeyState.NEXT:
            key = key.moved(KeyState.NEXT, now)
        changes.append(f"published {key.kid}")
        return [*keys, key]
    return keys


def apply_rotation(
    ring: KeyRing, now: float, policy: RotationPolicy, generate: Generate | None = None
) -> list[str]:
    """Run one rotation step on ``ring`` in place; returns what changed, for the audit log."""

    def fresh(alg: str, at: float) -> ManagedKey:
        return ManagedKey.create(alg, at, state=KeyState.NEXT, purpose=policy.purpose)

    result = rotate(ring.keys, now, policy, generate or fresh)
    ring.replace(result.keys)
    return result.changes
