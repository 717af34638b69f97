"""Alembic migrations of the SQL schema, run from code: no alembic.ini is needed.

``SQLStore.migrate()`` calls :func:`upgrade` on a connection inside its own write
transaction. To write a new revision against a scratch database::

    from alembic import command
    from tokenward.store.migrations import alembic_config
    command.revision(alembic_config("sqlite+aiosqlite:///scratch.db"), "message",
                     autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

__all__ = ["VERSION_TABLE", "alembic_config", "upgrade"]

# Our own name, so tokenward can share a database with an application that has its own
# Alembic history in the default ``alembic_version`` table.
VERSION_TABLE = "tokenward_alembic_version"

# "package:folder" resolves through importlib, so it works from an installed wheel.
SCRIPT_LOCATION = "tokenward.store:migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config for this package: a ``connection`` to run on, or a ``url``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # ConfigParser interpolation would read a '%' in a password as a reference
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """``alembic upgrade`` on ``connection``, inside the caller's transaction."""
    command.upgrade(alembic_config(connection=connection), revision)
