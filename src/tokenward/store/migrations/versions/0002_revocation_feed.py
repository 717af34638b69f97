"""The revocation feed and shared documents: revocation_events, documents.

``revocation_events`` is the cursor-ordered log every node and verifier follows;
``documents`` holds the sealed key ring shared by all nodes (compare-and-set on version).

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME: sa.Double[float] = sa.Double()
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "revocation_events",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_revocation_events"),
        sqlite_autoincrement=True,  # ids are never reused, even after a purge
    )
    op.create_index("ix_revocation_events_at", "revocation_events", ["at"])
    op.create_table(
        "documents",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_documents"),
    )


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("revocation_events")
