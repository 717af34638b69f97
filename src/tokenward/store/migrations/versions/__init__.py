"""Alembic revisions of the tokenward schema, oldest first (0001, 0002, ...)."""
