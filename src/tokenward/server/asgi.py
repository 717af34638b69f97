"""The ASGI entry point: ``uvicorn tokenward.server.asgi:app`` (or any ASGI server).

Settings come from the environment (``TOKENWARD_*``, ``TOKENWARD_CONFIG`` for a TOML
file) — this module is one of the edges where they are read. The first admin account is
created by ``tokenward serve`` (which prints its password once), or here at start-up
when ``TOKENWARD_ADMIN_PASSWORD`` is set; run ``tokenward migrate`` before many nodes
start at once.
"""

from __future__ import annotations

from tokenward.server.app import create_app
from tokenward.server.settings import Settings

__all__ = ["app"]

app = create_app(Settings(), bootstrap_admin=True)
