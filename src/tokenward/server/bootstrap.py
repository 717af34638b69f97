"""First start: create the ``admin`` account, so a fresh install can be administered.

Runs when the store has no user at all (a store with users is never touched again, even
if ``admin`` was renamed or removed). The password is ``settings.admin_password`` when
configured, else random; only a generated one is returned, for ``tokenward serve`` to
print exactly once — it is never logged or stored in clear (SECURITY.md).
"""

from __future__ import annotations

import secrets

from tokenward.errors import Conflict
from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts

__all__ = ["ADMIN_ROLE", "ADMIN_USERNAME", "bootstrap"]

ADMIN_USERNAME = "admin"
ADMIN_ROLE = "admin"
GENERATED_BYTES = 18  # 24 URL-safe characters, 144 bits


async def bootstrap(ctx: AppContext) -> str | None:
    """Create the first admin; returns the password only when it was generated here."""
    if await ctx.store.list_users():
        return None
    configured = ctx.settings.admin_password
    password = (
        configured.get_secret_value() if configured else secrets.token_urlsafe(GENERATED_BYTES)
    )
    try:
        await Accounts(ctx).create(ADMIN_USERNAME, password, roles=[ADMIN_ROLE])
    except Conflict:  # another node bootstrapped at the same moment; it owns the password
        return None
    return None if configured else password
