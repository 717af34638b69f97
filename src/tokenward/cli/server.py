"""``tokenward serve`` and ``tokenward migrate``: run the auth server, upgrade its database.

``serve`` works on a fresh machine with nothing configured: it creates the data directory,
the SQLite database, the signing key (encrypted by a generated master key) and an
``admin`` account whose password it prints once; a second start reuses all of it.
Settings come from ``TOKENWARD_*`` / ``TOKENWARD_CONFIG`` (server/settings.py); the
options here override them. In the ``prod`` profile insecure settings refuse to start,
each problem named on one line.
"""

from __future__ import annotations

import asyncio
import copy
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokenward.cli.common import handled

if TYPE_CHECKING:
    from tokenward.server.settings import Settings

# The server's modules are imported inside the commands (PLC0415 below): the CLI must load
# on an install without the ``server`` extra (``tokenward keys``, ``tokenward token``).

__all__ = ["migrate", "register", "serve", "server_settings"]


class Profile(enum.StrEnum):
    DEV = "dev"
    PROD = "prod"


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        file_okay=False,
        show_default=False,
        help="Data directory: database, keys (default: $TOKENWARD_DATA_DIR, else "
        "$XDG_DATA_HOME/tokenward)",
    ),
]
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def local_issuer(host: str, port: int) -> str:
    """The issuer when none is configured: this listener's own URL (dev)."""
    host = _WILDCARD_HOSTS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_settings(**options: Any) -> Settings:
    """Settings from the environment and the options given (None = not given)."""
    from tokenward.server.settings import Settings  # noqa: PLC0415

    given = {k: v for k, v in options.items() if v is not None}
    settings = Settings(**given)
    if "issuer" not in settings.model_fields_set:
        settings = Settings(**given, issuer=local_issuer(settings.host, settings.port))
    return settings


def _prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


async def _prepare(settings: Settings) -> str | None:
    """Migrations, keys and the first admin; returns a newly generated admin password."""
    from tokenward.server.bootstrap import bootstrap  # noqa: PLC0415
    from tokenward.server.context import build_context  # noqa: PLC0415

    ctx = await build_context(settings)
    try:
        return await bootstrap(ctx)
    finally:
        await ctx.store.close()


def _announce(settings: Settings, password: str | None) -> None:
    typer.echo(f"tokenward: data directory {settings.data_dir} (profile {settings.profile})")
    if problems := settings.problems():  # dev starts anyway; prod would refuse (check())
        typer.echo("not ready for production: " + "; ".join(problems))
    if password is not None:
        typer.echo(f"admin password: {password}")
        typer.echo("  (generated for the new 'admin' account: store it now, it is not shown again)")
    base = settings.issuer
    typer.echo(f"issuer: {base}")
    typer.echo(f"JWKS: {base}/.well-known/jwks.json")
    typer.echo(f"API docs: {base}/docs")


def _run(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from tokenward.server.app import create_app  # noqa: PLC0415

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        # The app reads X-Forwarded-For itself, only if trust_proxy_headers (deps.py).
        proxy_headers=False,
        server_header=False,
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
        log_level="info",
        log_config=log_config(),
    )


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus tokenward's: the audit trail as JSON lines (one event per
    line, nothing around it) and the server's own warnings and errors, on stderr."""
    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["tokenward.audit"] = {"format": "%(message)s"}
    config["formatters"]["tokenward"] = {"format": "%(levelname)s:     %(name)s: %(message)s"}
    for name in ("tokenward.audit", "tokenward"):
        config["handlers"][name] = {
            "class": "logging.StreamHandler",
            "formatter": name,
            "stream": "ext://sys.stderr",
        }
    config["loggers"]["tokenward"] = {"handlers": ["tokenward"], "level": "INFO"}
    config["loggers"]["tokenward.audit"] = {
        "handlers": ["tokenward.audit"],
        "level": "INFO",
        "propagate": False,
    }
    return config


@handled
def serve(
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port [8000]", min=1, max=65535)] = None,
    profile: Annotated[
        Profile | None, typer.Option(help="dev, or prod: refuse insecure settings [dev]")
    ] = None,
) -> None:
    """Run the auth server (first start: creates the database, keys and the admin)."""
    settings = server_settings(
        data_dir=data_dir, host=host, port=port, profile=str(profile) if profile else None
    )
    settings.check()  # prod: every insecure setting, on one line
    _prepare_data_dir(settings)
    password = asyncio.run(_prepare(settings))
    _announce(settings, password)
    _run(settings)


async def _migrate(settings: Settings) -> None:
    from tokenward.store import open_store  # noqa: PLC0415

    store = open_store(settings.effective_database_url)
    try:
        await store.migrate()
    finally:
        await store.close()


@handled
def migrate(data_dir: DataDirOption = None) -> None:
    """Apply the database migrations (idempotent; safe while other nodes run)."""
    settings = server_settings(data_dir=data_dir)
    _prepare_data_dir(settings)
    asyncio.run(_migrate(settings))
    typer.echo("migrations applied: the database schema is up to date")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``migrate`` as top-level commands of the ``tokenward`` app."""
    app.command("serve")(serve)
    app.command("migrate")(migrate)
