"""``tokenward keys``: generate, list, rotate and publish the signing keys in the key store."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tokenward.cli.common import (
    DirOption,
    as_option,
    handled,
    iso,
    now,
    open_ring,
    save_ring,
    settings,
    stdout_console,
    usage_error,
)
from tokenward.cli.parsing import parse_alg, parse_duration
from tokenward.keys import KeyPurpose, KeyRing, KeyState, ManagedKey
from tokenward.rotation import RotationPolicy, apply_rotation

__all__ = ["app"]

app = typer.Typer(help="Manage the signing keys in the key store.", no_args_is_help=True)

AlgOption = Annotated[str, typer.Option("--alg", help="JWS algorithm, e.g. ES256, EdDSA, RS256")]
PurposeOption = Annotated[
    KeyPurpose, typer.Option("--purpose", help="Which tokens the key signs (R24)")
]


@app.command()
@handled
def generate(
    *,
    alg: AlgOption = "ES256",
    purpose: PurposeOption = KeyPurpose.ACCESS,
    next_: Annotated[
        bool, typer.Option("--next", help="Publish the key but do not sign with it yet")
    ] = False,
    data_dir: DirOption = None,
) -> None:
    """Generate a key (ACTIVE unless --next; the previous active key starts RETIRING)."""
    alg = as_option("--alg", parse_alg, alg)
    s = settings(data_dir)
    ring, master = open_ring(s, create=True)
    state = KeyState.NEXT if next_ else KeyState.ACTIVE
    key = ring.generate(alg, now(), purpose=purpose, state=state)
    save_ring(ring, s, master)
    typer.echo(key.kid)


def key_row(k: ManagedKey) -> dict[str, Any]:
    """What may be shown about a key: never its material."""
    return {
        "kid": k.kid,
        "alg": k.alg,
        "purpose": str(k.purpose),
        "state": str(k.state),
        "created_at": iso(k.created_at),
        "activated_at": iso(k.activated_at),
        "retiring_at": iso(k.retiring_at),
        "retired_at": iso(k.retired_at),
    }


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for name in ("kid", "alg", "purpose", "state", "created", "activated", "retiring", "retired"):
        table.add_column(name, no_wrap=True)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "-" for v in row.values()))
    return table


@app.command("list")
@handled
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    data_dir: DirOption = None,
) -> None:
    """List the keys with their states and times (UTC). Never prints key material."""
    ring, _ = open_ring(settings(data_dir))
    rows = [key_row(k) for k in ring]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        stdout_console().print(_table(rows))


def _force_rotate(ring: KeyRing, alg: str, purpose: KeyPurpose) -> list[str]:
    """Key compromise: a fresh key signs from now on; the old one only verifies."""
    old = next((k for k in ring if k.state is KeyState.ACTIVE and k.purpose is purpose), None)
    new = ring.generate(alg, now(), purpose=purpose, state=KeyState.ACTIVE)
    return [f"activated {new.kid}"] + ([f"retiring {old.kid}"] if old else [])


def _policy(alg: str, period: str, ahead: str, ttl: str, purpose: KeyPurpose) -> RotationPolicy:
    options = (("--period", period), ("--publish-ahead", ahead), ("--max-token-ttl", ttl))
    p, a, t = (as_option(hint, parse_duration, value) for hint, value in options)
    try:
        return RotationPolicy(alg=alg, period=p, publish_ahead=a, max_token_ttl=t, purpose=purpose)
    except ValueError as exc:  # e.g. publish-ahead not shorter than period
        usage_error(str(exc))


@app.command()
@handled
def rotate(
    *,
    alg: AlgOption = "ES256",
    period: Annotated[str, typer.Option(help="How long a key signs")] = "30d",
    publish_ahead: Annotated[
        str, typer.Option(help="How long a next key is published before it signs")
    ] = "1d",
    max_lifetime: Annotated[
        str,
        typer.Option("--max-token-ttl", help="Longest token lifetime; retiring keys stay as long"),
    ] = "1h",
    purpose: PurposeOption = KeyPurpose.ACCESS,
    force: Annotated[
        bool, typer.Option("--force", help="Rotate now (key compromise), ignoring the schedule")
    ] = False,
    data_dir: DirOption = None,
) -> None:
    """Run one scheduled rotation step, or with --force replace the active key now."""
    alg = as_option("--alg", parse_alg, alg)
    policy = _policy(alg, period, publish_ahead, max_lifetime, purpose)
    s = settings(data_dir)
    ring, master = open_ring(s)
    changes = _force_rotate(ring, alg, purpose) if force else apply_rotation(ring, now(), policy)
    if changes:
        save_ring(ring, s, master)
    for change in changes or ["nothing to do"]:
        typer.echo(change)


@app.command()
@handled
def jwks(data_dir: DirOption = None) -> None:
    """Print the public JWK Set (RFC 7517 §5) of the published access keys."""
    ring, _ = open_ring(settings(data_dir))
    typer.echo(json.dumps(ring.jwks(), indent=2))
