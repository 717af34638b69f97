"""The ``tokenward`` command line (typer + rich), for operators.

Each concern is one sub-application module registered in ``SUBCOMMANDS``; commands call
library code (never HTTP routes), read settings only through ``cli.common``, and turn
errors into one line on stderr (exit 1; 2 for usage errors) — never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tokenward import __version__
from tokenward.cli import keys, token

__all__ = ["SUBCOMMANDS", "app", "main"]

SUBCOMMANDS: dict[str, typer.Typer] = {
    "keys": keys.app,
    "token": token.app,
}

app = typer.Typer(
    name="tokenward",
    help="tokenward: JWT keys and tokens from the command line.",
    no_args_is_help=True,
    # A bug must never print locals: they may hold the master key or private keys.
    pretty_exceptions_show_locals=False,
)
for _name, _sub in SUBCOMMANDS.items():
    app.add_typer(_sub, name=_name)


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
    """JWT keys and tokens: key store, rotation, JWKS, signing and verification."""


def main() -> None:
    """Console-script entry point (``tokenward = "tokenward.cli:main"``)."""
    app(prog_name="tokenward")
