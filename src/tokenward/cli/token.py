"""``tokenward token``: sign a token with the key store, verify one against a JWKS, decode one."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from tokenward.cli.common import DirOption, as_option, handled, open_ring, settings, usage_error
from tokenward.cli.parsing import decode_unverified, parse_claims, parse_duration
from tokenward.errors import JWKSError
from tokenward.jose.jws import KeyLookup
from tokenward.sdk.jwks import RemoteJWKS
from tokenward.tokens import Issuer, Verifier

__all__ = ["app"]

app = typer.Typer(help="Sign, verify and inspect tokens.", no_args_is_help=True)

MAX_STDIN = 64 * 1024  # far above any token the verifier accepts (R1)
TokenArgument = Annotated[
    str | None, typer.Argument(help="The token; '-' or nothing reads it from stdin")
]
AudOption = Annotated[list[str], typer.Option("--aud", help="Audience (repeat for several)")]
IssOption = Annotated[
    str | None,
    typer.Option("--iss", help="Issuer (default: $TOKENWARD_ISSUER, else http://localhost:8000)"),
]


def read_token(arg: str | None) -> str:
    """The token from the argument, or from stdin for ``-`` / no argument."""
    if arg is not None and arg != "-":
        return arg.strip()
    if sys.stdin is None or sys.stdin.isatty():  # None: started with stdin closed
        usage_error("give a TOKEN or pipe one on stdin")
    return sys.stdin.read(MAX_STDIN).strip()


@app.command()
@handled
def sign(
    *,
    sub: Annotated[str, typer.Option("--sub", help="Subject (the user id)")],
    aud: AudOption,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 90s, 15m, 1h or seconds")] = "15m",
    scope: Annotated[str | None, typer.Option("--scope", help="Space-separated scopes")] = None,
    claim: Annotated[
        list[str] | None,
        typer.Option("--claim", help="Extra claim NAME=VALUE; VALUE is JSON if it parses"),
    ] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="client_id claim")] = None,
    iss: IssOption = None,
    data_dir: DirOption = None,
) -> None:
    """Sign an RFC 9068 access token with the key store's active access key."""
    seconds = as_option("--ttl", parse_duration, ttl)
    claims = as_option("--claim", parse_claims, claim or [])
    s = settings(data_dir)
    ring, _ = open_ring(s)
    issuer = Issuer(ring, issuer=iss or s.issuer)
    audience: str | list[str] = aud[0] if len(aud) == 1 else list(aud)
    token = issuer.issue(
        sub, audience, scope=scope, client_id=client_id, ttl=seconds, claims=claims
    )
    typer.echo(token)


def read_jwks_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise JWKSError(f"{path} is not JSON") from None
    if not isinstance(doc, dict):
        raise JWKSError(f"{path} is not a JWK Set (a JSON object with a 'keys' array)")
    return doc


@contextmanager
def key_source(spec: str) -> Iterator[KeyLookup | Mapping[str, Any]]:
    """An http(s) URL -> RemoteJWKS (fetched once up front, so failures show); else a file."""
    if not spec.lower().startswith(("http://", "https://")):
        yield read_jwks_file(Path(spec))
        return
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        remote = RemoteJWKS(spec, client=client)
        remote.refresh()
        yield remote


@app.command()
@handled
def verify(
    *,
    jwks: Annotated[str, typer.Option("--jwks", help="JWK Set file, or its http(s) URL")],
    aud: AudOption,
    token: TokenArgument = None,
    iss: IssOption = None,
    leeway: Annotated[
        float, typer.Option("--leeway", min=0, max=300, help="Clock skew allowed, seconds")
    ] = 30,
) -> None:
    """Verify a token; print its claims as JSON, or exit 1 with the rejection code."""
    text = read_token(token)
    issuer = iss or settings().issuer
    with key_source(jwks) as keys:
        verifier = Verifier(keys, issuer=issuer, audience=aud, leeway=leeway, cache_size=0)
        claims = verifier.verify(text)
    typer.echo(json.dumps(claims, indent=2))


@app.command()
@handled
def decode(token: TokenArgument = None) -> None:
    """Show a token's header and payload WITHOUT verifying it (stdout stays JSON)."""
    parts = decode_unverified(read_token(token))
    typer.echo("UNVERIFIED: the signature and claims were not checked", err=True)
    typer.echo(json.dumps(parts, indent=2))
