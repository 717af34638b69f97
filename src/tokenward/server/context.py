"""AppContext: everything a request needs, built once at start-up and held on the app."""

from __future__ import annotations

from dataclasses import dataclass

from tokenward.clock import Clock, system_clock
from tokenward.keys import KeyRing
from tokenward.revocation import RevocationView
from tokenward.server.audit import Audit
from tokenward.server.keyring import load_or_create_ring
from tokenward.server.metrics import Metrics
from tokenward.server.passwords import Passwords
from tokenward.server.ratelimit import Limiter
from tokenward.server.settings import Settings
from tokenward.store import open_store
from tokenward.store.base import Store
from tokenward.tokens import Issuer, Verifier

__all__ = ["FIRST_PARTY_CLIENT", "AppContext", "build_context"]

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


def _limits(settings: Settings) -> dict[str, str]:
    return {
        "login:ip": settings.login_rate_per_ip,
        "login:account": settings.login_rate_per_account,
        "token:ip": settings.token_rate_per_ip,
    }


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
    ring = ring or load_or_create_ring(settings, clock)
    view = RevocationView()
    await hydrate(store, view, settings.issuer, clock())
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
        limiter=Limiter(_limits(settings), settings.redis_url),
        audit=Audit(store, clock),
        metrics=Metrics(),
    )
