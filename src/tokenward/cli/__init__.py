"""The ``tokenward`` command line (typer + rich), for operators.

Each concern is one sub-application module registered in ``SUBCOMMANDS``; commands call
library code (never HTTP routes), read settings only through ``cli.common``, and turn
errors into one line on stderr (exit 1; 2 for usage errors) — never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from tokenward import __version__
from tokenward.cli import keys, server, token

__all__ = ["SUBCOMMANDS", "app", "main"]

SUBCOMMANDS: dict[str, typer.Typer] = {
    "keys": keys.app,
    "token": token.app,
}
# Sub-apps that need the ``server`` extra: registered only when it is installed, so the
# SDK-only install keeps ``tokenward keys`` and ``tokenward token`` working.
SERVER_SUBCOMMANDS = ("users", "clients")


def _server_subcommands() -> dict[str, typer.Typer]:
    found: dict[str, typer.Typer] = {}
    for name in SERVER_SUBCOMMANDS:
        try:
            module = importlib.import_module(f"tokenward.cli.{name}")
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("tokenward"):
                raise  # our own bug, not a missing extra
            continue
        found[name] = module.app
    return found


SUBCOMMANDS.update(_server_subcommands())

app = typer.Typer(
    name="tokenward",
    help="tokenward: the auth server, its users and clients, JWT keys and tokens.",
    no_args_is_help=True,
    # A bug must never print locals: they may hold the master key or private keys.
    pretty_exceptions_show_locals=False,
)
for _name, _sub in sorted(SUBCOMMANDS.items()):
    app.add_typer(_sub, name=_name)
server.register(app)  # serve, migrate: import the server lazily inside the commands


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokenward {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version"),
    ] = False,
) -> None:
    """The auth server (serve, migrate, users, clients) and JWT keys and tokens."""


def main() -> None:
    """Console-script entry point (``tokenward = "tokenward.cli:main"``)."""
    app(prog_name="tokenward")
