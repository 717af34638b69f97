"""Usernames are case-insensitive from here on: stored lowercase.

Accounts created by earlier versions with capitals are renamed to their lowercase form,
one by one, where that name is free. Where it is taken ("Alice" beside "alice"), the
capitalised account keeps its name and an administrator decides (rename or disable);
logins look up the lowercase name only. No schema change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USERS = sa.table("users", sa.column("id", sa.String()), sa.column("username", sa.String()))


def upgrade() -> None:
    bind = op.get_bind()
    taken = {row.username for row in bind.execute(sa.select(_USERS.c.username))}
    rows = bind.execute(sa.select(_USERS.c.id, _USERS.c.username).order_by(_USERS.c.id))
    for user_id, name in list(rows):
        lower = name.lower()
        if lower == name or lower in taken:
            continue
        bind.execute(sa.update(_USERS).where(_USERS.c.id == user_id).values(username=lower))
        taken.discard(name)
        taken.add(lower)


def downgrade() -> None:
    """The original capitals are not kept: nothing to undo."""
