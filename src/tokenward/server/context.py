"""AppContext: everything a request needs, built once at start-up and held on the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenward.clock import Clock, system_clock
from tokenward.keys import KeyRing
from tokenward.revocation import RevocationView
from tokenward.server.audit import Audit
from tokenward.server.events import NodeEvents, channel_name
from tokenward.server.keyring import SharedRing, open_shared_ring
from tokenward.server.lockout import PhantomLockouts
from tokenward.server.metrics import Metrics
from tokenward.server.passwords import Passwords
from tokenward.server.ratelimit import Limiter
from tokenward.server.settings import Settings
from tokenward.store import open_store
from tokenward.store.base import Store
from tokenward.store.ephemeral import open_ephemeral
from tokenward.tokens import Issuer, Verifier

__all__ = ["FIRST_PARTY_CLIENT", "AppContext", "build_context", "close_context"]

FIRST_PARTY_CLIENT = "tokenward"  # the client id of /api/v1/login sessions


@dataclass
class AppContext:
    settings: Settings
    store: Store
    clock: Clock
    ring: KeyRing
    issuer: Issuer
    verifier: Verifier
    revocation: RevocationView
    passwords: Passwords
    limiter: Limiter
    audit: Audit
    metrics: Metrics
    keys: SharedRing  # the ring (``ring`` above) and where it is shared
    events: NodeEvents  # revocation events: publishing and following the other nodes
    phantoms: PhantomLockouts = field(default_factory=PhantomLockouts)  # unknown usernames


def _limiter(settings: Settings) -> Limiter:
    limits = {
        "login:ip": settings.login_rate_per_ip,
        "login:account": settings.login_rate_per_account,
        "token:ip": settings.token_rate_per_ip,
        "token:account": settings.token_rate_per_account,
    }
    # counters in Redis are shared by every node (SECURITY.md "Accounts": per IP and account)
    return Limiter(limits, settings.redis_url, key_prefix=f"{settings.redis_prefix}:limits")


def _phantoms(settings: Settings, clock: Clock) -> PhantomLockouts:
    # unknown names lock on every node when Redis is configured (SECURITY.md "Accounts")
    shared = (
        open_ephemeral(settings.redis_url, prefix=settings.redis_prefix, clock=clock)
        if settings.redis_url
        else None
    )
    return PhantomLockouts(shared, clock=clock)


def _events(settings: Settings, store: Store, view: RevocationView, clock: Clock) -> NodeEvents:
    return NodeEvents(
        store,
        view,
        clock,
        redis_url=settings.redis_url,
        channel=channel_name(settings.redis_prefix),
        poll_every=settings.revocation_poll_seconds,
    )


def _connect(keys: SharedRing, events: NodeEvents) -> None:
    """A key ring change here is announced; one announced elsewhere reloads ours."""

    async def announce(version: int) -> None:
        await events.publish("keys_changed", {"version": version})

    keys.on_change = announce
    events.reload_keys = keys.reload


async def hydrate(store: Store, view: RevocationView, issuer: str, now: float) -> None:
    """Load persisted revocations into the in-memory view (after a restart)."""
    view.set_epoch(await store.get_epoch())
    for jti, exp in await store.denied(now):
        view.deny(jti, exp)
    for user in await store.list_users():
        if user.token_version:
            view.set_token_version(issuer, user.id, user.token_version)


async def build_context(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
    ring: KeyRing | None = None,
) -> AppContext:
    settings.check()
    store = store or open_store(settings.effective_database_url)
    await store.migrate()
    keys = (
        SharedRing(ring, None, b"", None)
        if ring is not None
        else await open_shared_ring(settings, store, clock)
    )
    ring = keys.ring
    view = RevocationView()
    events = _events(settings, store, view, clock)
    await events.start()  # the cursor first: an event while loading is then read twice
    await hydrate(store, view, settings.issuer, clock())
    _connect(keys, events)
    issuer = Issuer(
        ring,
        issuer=settings.issuer,
        default_ttl=settings.access_ttl,
        max_ttl=settings.access_ttl,
        client_id=FIRST_PARTY_CLIENT,
        clock=clock,
    )
    verifier = Verifier(
        ring,
        issuer=settings.issuer,
        audience=settings.effective_audience,
        clock=clock,
        revocation=view,
    )
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        min_length=settings.password_min_length,
    )
    return AppContext(
        settings=settings,
        store=store,
        clock=clock,
        ring=ring,
        issuer=issuer,
        verifier=verifier,
        revocation=view,
        passwords=passwords,
        limiter=_limiter(settings),
        audit=Audit(store, clock),
        metrics=Metrics(),
        keys=keys,
        events=events,
        phantoms=_phantoms(settings, clock),
    )


async def close_context(ctx: AppContext) -> None:
    """Release what the context opened: Redis connections, then the store."""
    await ctx.events.close()
    await ctx.phantoms.close()
    await ctx.store.close()
