"""``tokenward clients``: register OAuth clients (RFC 6749 §2) and list them.

A confidential client's secret is printed once, on stdout, and stored only as an argon2id
hash: it cannot be shown again, only replaced by registering a new client.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tokenward.cli.common import handled, iso, stdout_console
from tokenward.cli.users import DataDirOption, run_in_context
from tokenward.server.context import AppContext
from tokenward.server.services.clients import Clients
from tokenward.store.base import Client

__all__ = ["app"]

app = typer.Typer(help="Manage OAuth clients in the server's store.", no_args_is_help=True)


class GrantType(enum.StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"


def client_row(client: Client) -> dict[str, Any]:
    """What may be shown about a client: never its secret hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "confidential": client.secret_hash is not None,
        "scopes": list(client.scopes),
        "grant_types": list(client.grant_types),
        "disabled": client.disabled,
        "created_at": iso(client.created_at),
    }


@app.command()
@handled
def add(
    client_id: Annotated[str, typer.Argument(help="The client id: 1-64 of A-Z a-z 0-9 . _ -")],
    *,
    name: Annotated[str | None, typer.Option("--name", help="A display name")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="An allowed scope (repeat for several)")
    ] = None,
    grant: Annotated[
        list[GrantType] | None,
        typer.Option("--grant", help="An allowed grant type (repeat for several)"),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client: no secret (RFC 6749 §2.1)")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Register a client; a confidential client's secret is printed ONCE."""
    default = GrantType.REFRESH_TOKEN if public else GrantType.CLIENT_CREDENTIALS
    grants = [str(g) for g in (grant or [default])]

    async def work(ctx: AppContext) -> tuple[Client, str | None]:
        return await Clients(ctx).create(
            client_id, name or client_id, scope or [], grants, confidential=not public
        )

    client, secret = run_in_context(data_dir, work)
    typer.echo(f"client_id: {client.client_id}")
    if secret is not None:
        typer.echo(f"client_secret: {secret}")
        typer.echo("Store the secret now: it is not kept and cannot be shown again.", err=True)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("client_id", "name", "type", "scopes", "grants", "disabled", "created"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        kind = "confidential" if r["confidential"] else "public"
        table.add_row(
            r["client_id"],
            r["name"],
            kind,
            " ".join(r["scopes"]) or "-",
            " ".join(r["grant_types"]),
            "yes" if r["disabled"] else "no",
            r["created_at"] or "-",
        )
    return table


@app.command("list")
@handled
def list_clients(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List the registered clients (never their secrets)."""

    async def work(ctx: AppContext) -> list[dict[str, Any]]:
        return [client_row(c) for c in await Clients(ctx).list()]

    rows = run_in_context(data_dir, work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        stdout_console().print(_table(rows))
