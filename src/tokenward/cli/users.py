"""``tokenward users``: add, list, disable and enable accounts in the server's store.

Commands open the server's settings (``TOKENWARD_*`` environment, ``--data-dir``
overrides the data directory) and its context (store migrated, keys loaded) at the edge,
run one coroutine, and close the store. Passwords come from a hidden prompt (asked twice)
or one line of stdin; they are never echoed, logged or accepted as an argument.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table

from tokenward.cli.common import fail, handled, iso, stdout_console, usage_error
from tokenward.errors import ConfigError, NotFound
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext, build_context, close_context
from tokenward.server.services.accounts import Accounts, canonical_username
from tokenward.server.settings import Settings
from tokenward.store import open_store
from tokenward.store.base import User

__all__ = ["DataDirOption", "app", "run_in_context"]

app = typer.Typer(help="Manage user accounts in the server's store.", no_args_is_help=True)

T = TypeVar("T")
CLI = RequestInfo(ip="", user_agent="tokenward-cli")
MAX_PASSWORD = 1024
_DB_MODULES = frozenset({"sqlalchemy", "aiosqlite", "asyncpg", "sqlite3"})

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "--dir",
        file_okay=False,
        help="Data directory (default: $TOKENWARD_DATA_DIR, else $XDG_DATA_HOME/tokenward)",
        show_default=False,
    ),
]


def server_settings(data_dir: Path | None) -> Settings:
    """The server's settings from the environment; ``--data-dir`` wins over it."""
    overrides: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    try:
        return Settings(**overrides)
    except ValidationError as exc:  # name the setting, never echo its value (may be secret)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def run_in_context(data_dir: Path | None, work: Callable[[AppContext], Awaitable[T]]) -> T:
    """Build the server context, run ``work`` on it, always close the store."""
    settings = server_settings(data_dir)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def main() -> T:
        store = open_store(settings.effective_database_url)
        ctx: AppContext | None = None
        try:  # opened here so that it is closed even when migrating or loading keys fails
            ctx = await build_context(settings, store=store)
            return await work(ctx)
        finally:
            if ctx is not None:
                await close_context(ctx)  # Redis publisher too, then the store
            else:
                await store.close()

    try:
        return asyncio.run(main())
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in _DB_MODULES:
            # The driver's message may quote the URL or bound values: name the kind only.
            fail(f"error: database error ({type(exc).__name__})")
        raise


# -- passwords -----------------------------------------------------------------------------
def read_password(from_stdin: bool) -> str:
    if not from_stdin:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    if sys.stdin is None:
        usage_error("--password-stdin needs a password on stdin")
    line = sys.stdin.readline(MAX_PASSWORD + 2)
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        usage_error("--password-stdin read an empty password")
    return password


async def _by_name(ctx: AppContext, name: str) -> User:
    user = await ctx.store.get_user_by_name(canonical_username(name))
    if user is None:
        raise NotFound(f"no user named {name[:64]!r}")
    return user


async def _cli_action(ctx: AppContext, action: str, user: User) -> None:
    """Like the admin API: Accounts audits the event, this records who did it."""
    await ctx.audit.emit(
        "admin.action",
        user_id=user.id,
        username=user.username,
        request=CLI,
        actor_id=None,
        via="cli",
        action=action,
    )


def user_row(user: User) -> dict[str, Any]:
    """What may be shown about an account: never its password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "locked_until": iso(user.locked_until),
        "created_at": iso(user.created_at),
    }


# -- commands ------------------------------------------------------------------------------
@app.command()
@handled
def add(
    name: Annotated[str, typer.Argument(help="The username")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from one line of stdin")
    ] = False,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role, e.g. admin (repeat for several)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an account; prints its id."""
    password = read_password(password_stdin)
    roles = list(dict.fromkeys(role or []))

    async def work(ctx: AppContext) -> User:
        user = await Accounts(ctx).create(name, password, roles=roles)
        await ctx.audit.emit(
            "user.created",
            user_id=user.id,
            username=user.username,
            request=CLI,
            actor_id="cli",
            roles=roles,
        )
        return user

    typer.echo(run_in_context(data_dir, work).id)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("id", "username", "roles", "disabled", "locked until", "created"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        roles = ", ".join(row["roles"]) or "-"
        cells = (
            row["id"],
            row["username"],
            roles,
            "yes" if row["disabled"] else "no",
            row["locked_until"] or "-",
            row["created_at"] or "-",
        )
        table.add_row(*cells)
    return table


@app.command("list")
@handled
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List the accounts (never their password hashes)."""

    async def work(ctx: AppContext) -> list[dict[str, Any]]:
        return [user_row(u) for u in await ctx.store.list_users()]

    rows = run_in_context(data_dir, work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        stdout_console().print(_table(rows))


def _set_disabled(name: str, disabled: bool, data_dir: Path | None) -> None:
    async def work(ctx: AppContext) -> User:
        user = await Accounts(ctx).set_disabled(
            (await _by_name(ctx, name)).id, disabled, request=CLI
        )
        await _cli_action(ctx, "user.disabled" if disabled else "user.enabled", user)
        return user

    user = run_in_context(data_dir, work)
    typer.echo(f"{user.username}: {'disabled' if user.disabled else 'enabled'}")


@app.command()
@handled
def disable(
    name: Annotated[str, typer.Argument(help="The username")], data_dir: DataDirOption = None
) -> None:
    """Disable an account: it cannot sign in, and its sessions and tokens end."""
    _set_disabled(name, True, data_dir)


@app.command()
@handled
def enable(
    name: Annotated[str, typer.Argument(help="The username")], data_dir: DataDirOption = None
) -> None:
    """Enable a disabled account again."""
    _set_disabled(name, False, data_dir)
