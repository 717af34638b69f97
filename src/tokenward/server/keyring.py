"""The server's signing keys: loaded from the data dir (encrypted), created on first start."""

from __future__ import annotations

from tokenward.clock import Clock
from tokenward.errors import KeyStoreError
from tokenward.keys import KeyRing, KeyState, ManagedKey
from tokenward.keystore import KEYRING_FILE, load_keyring, master_key, save_keyring
from tokenward.rotation import DAY, RotationPolicy
from tokenward.server.settings import Settings

__all__ = ["load_or_create_ring", "rotation_policy", "save_ring"]


def rotation_policy(settings: Settings) -> RotationPolicy:
    return RotationPolicy(
        alg=settings.signing_alg,
        period=settings.key_rotation_days * DAY,
        publish_ahead=min(
            settings.key_publish_ahead_hours * 3600, settings.key_rotation_days * DAY / 2
        ),
        max_token_ttl=settings.access_ttl,
    )


def _master(settings: Settings) -> bytes:
    env = settings.master_key.get_secret_value() if settings.master_key else None
    return master_key(settings.data_dir, env)


def save_ring(settings: Settings, ring: KeyRing) -> None:
    save_keyring(ring, settings.data_dir, _master(settings))


def load_or_create_ring(settings: Settings, clock: Clock) -> KeyRing:
    """Open the key store; on first start generate the signing key (and save it)."""
    master = _master(settings)
    if (settings.data_dir / KEYRING_FILE).exists():
        ring = load_keyring(settings.data_dir, master)
        if any(k.state is KeyState.ACTIVE for k in ring):
            return ring
    else:
        ring = KeyRing()
    now = clock()
    secret = settings.hmac_secret
    if settings.signing_alg.startswith("HS") and secret is not None:
        ring.add(
            ManagedKey.create(
                settings.signing_alg, now, material=secret.get_secret_value().encode()
            )
        )
    else:
        ring.generate(settings.signing_alg, now)
    try:
        save_keyring(ring, settings.data_dir, master)
    except OSError as exc:
        raise KeyStoreError(f"cannot write the key store in {settings.data_dir}: {exc}") from exc
    return ring
