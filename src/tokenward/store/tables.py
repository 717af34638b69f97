"""The SQL schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

This is the *current* shape of the tables; migrations/versions/ holds the history that
builds it, and a contract test compares the two so they cannot drift apart.

Timestamps are ``Double`` (seconds since the epoch, as the injected clock gives them):
one type that round-trips a Python float exactly on both engines. Lists (roles, scopes,
grant types) and the audit ``data`` are JSON. Secrets are stored only as hashes.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "audit_events",
    "clients",
    "denylist",
    "documents",
    "families",
    "kv",
    "metadata",
    "refresh_tokens",
    "revocation_events",
    "users",
]

# Deterministic constraint names, so a later migration can drop or alter them by name on
# every engine (SQLite and PostgreSQL would otherwise invent different ones).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

# Unbounded strings: a length limit would reject on PostgreSQL what SQLite silently keeps,
# and the backends must behave alike; input length is the services' job to validate.
ID = sa.String()
NAME = sa.String()
TIME: sa.Double[float] = sa.Double()

# Audit rows need an insertion order for "newest first" when two events share a
# timestamp (a frozen clock in tests, a coarse clock in production). SQLite only
# autoincrements an INTEGER PRIMARY KEY, hence the variant.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("username", NAME, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("token_version", sa.Integer, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", TIME, nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("password_changed_at", TIME, nullable=False),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", NAME, primary_key=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
)

# No foreign keys to users/clients: the protocol lets a family name a client that is
# configured elsewhere (first-party clients), and the memory backend must behave the same.
families = sa.Table(
    "families",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, nullable=False, index=True),
    sa.Column("client_id", NAME, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("last_used_at", TIME, nullable=False),
    sa.Column("expires_at", TIME, nullable=False),
    sa.Column("idle_expires_at", TIME, nullable=False),
    sa.Column("revoked_at", TIME, nullable=True),
    sa.Column("revoke_reason", sa.Text, nullable=True),
    sa.Column("user_agent", sa.Text, nullable=False),
    sa.Column("ip", sa.String(), nullable=False),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(), primary_key=True),
    sa.Column("family_id", ID, sa.ForeignKey("families.id"), nullable=False, index=True),
    sa.Column("generation", sa.Integer, nullable=False),
    # indexed: the grace-window regrant finds the active child by its parent
    sa.Column("parent_hash", sa.String(), nullable=True, index=True),
    sa.Column("client_id", NAME, nullable=False),
    sa.Column("user_id", ID, nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("expires_at", TIME, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("used_at", TIME, nullable=True),
    sa.Column("access_jti", sa.String(), nullable=False),
    sa.Column("access_exp", TIME, nullable=False),
)

denylist = sa.Table(
    "denylist",
    metadata,
    sa.Column("jti", sa.String(), primary_key=True),
    sa.Column("expires_at", TIME, nullable=False, index=True),
)

# Small named values (the global revocation epoch); text so any later value fits.
kv = sa.Table(
    "kv",
    metadata,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("at", TIME, nullable=False, index=True),
    sa.Column("type", sa.String(), nullable=False, index=True),
    sa.Column("user_id", ID, nullable=True, index=True),
    sa.Column("username", NAME, nullable=True),
    sa.Column("ip", sa.String(), nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("session_id", ID, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
)

# The revocation feed (migration 0002). The id is the cursor readers follow, so it must
# never be reused: AUTOINCREMENT on SQLite (a plain rowid could come back after a purge),
# a sequence on PostgreSQL. Inserts are serialised (sql_events.py) so ids commit in order.
revocation_events = sa.Table(
    "revocation_events",
    metadata,
    sa.Column("id", SEQ, primary_key=True, autoincrement=True),
    sa.Column("at", TIME, nullable=False, index=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sqlite_autoincrement=True,
)

# Named documents replaced by compare-and-set on ``version`` (the sealed key ring).
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
