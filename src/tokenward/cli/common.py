"""The CLI edge: settings from the environment, the key store on disk, errors -> exit codes.

This is the only module of the CLI that reads ``os.environ``; commands receive a
:class:`Settings` and pass plain values to the library. Exit codes: 0 success, 1 the
operation failed (bad key store, rejected token, unreadable file), 2 bad usage (click's
convention; click's own parse errors keep typer's format, ours are one line).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from tokenward.clock import system_clock
from tokenward.errors import ConfigError, InvalidToken, KeyStoreError, TokenwardError
from tokenward.keys import KeyRing
from tokenward.keystore import KEYRING_FILE, load_keyring, master_key, save_keyring

__all__ = [
    "DEFAULT_ISSUER",
    "DirOption",
    "Settings",
    "as_option",
    "describe",
    "fail",
    "handled",
    "iso",
    "now",
    "open_ring",
    "save_ring",
    "settings",
    "stdout_console",
    "usage_error",
]

DEFAULT_ISSUER = "http://localhost:8000"
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        file_okay=False,
        help="Key store directory (default: $TOKENWARD_DATA_DIR, else $XDG_DATA_HOME/tokenward)",
        show_default=False,
    ),
]


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/tokenward`` (XDG: only if absolute), else ``~/.local/share/tokenward``."""
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "tokenward"
    try:
        return Path.home() / ".local" / "share" / "tokenward"
    except RuntimeError:  # no home directory (Python >= 3.12 raises)
        raise ConfigError("cannot find a home directory; set TOKENWARD_DATA_DIR") from None


@dataclass(frozen=True, slots=True)
class Settings:
    """What the CLI takes from the environment; everything else is an option."""

    data_dir: Path
    issuer: str = DEFAULT_ISSUER
    master_key_value: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        data_dir = env.get("TOKENWARD_DATA_DIR")
        return cls(
            data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(env),
            issuer=env.get("TOKENWARD_ISSUER") or DEFAULT_ISSUER,
            master_key_value=env.get("TOKENWARD_MASTER_KEY") or None,
        )


def settings(data_dir: Path | None = None) -> Settings:
    """Settings from the process environment; ``--dir`` overrides the data directory."""
    env = dict(os.environ)
    if data_dir is not None:
        env["TOKENWARD_DATA_DIR"] = str(data_dir)
    return Settings.from_env(env)


def now() -> float:
    return system_clock()


# -- the key store -------------------------------------------------------------------------
def open_ring(s: Settings, *, create: bool = False) -> tuple[KeyRing, bytes]:
    """Load the ring and its master key; with ``create``, start an empty one if none exists."""
    path = s.data_dir / KEYRING_FILE
    if path.exists():
        master = _master(s, create=False)
        return load_keyring(s.data_dir, master), master
    if not create:
        raise KeyStoreError(f"no key store at {path}; run 'tokenward keys generate'")
    s.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return KeyRing(), _master(s, create=True)


def _master(s: Settings, *, create: bool) -> bytes:
    return master_key(s.data_dir, s.master_key_value, create=create)


def save_ring(ring: KeyRing, s: Settings, master: bytes) -> None:
    save_keyring(ring, s.data_dir, master)


# -- output and errors ---------------------------------------------------------------------
def iso(ts: float | None) -> str | None:
    """Seconds since the epoch -> ISO-8601 UTC (``2025-01-31T12:00:00Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stdout_console() -> Console:
    console = Console()
    # Piped output is not cut to 80 columns: kids must survive `| grep` intact.
    return console if console.is_terminal else Console(width=240)


def describe(exc: BaseException) -> str:
    """One line for stderr. Token rejections lead with their stable code (errors.py)."""
    if isinstance(exc, InvalidToken):
        text = f"{exc.error}: {exc.code} ({exc})"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"error: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = f"error: {exc}"
    return " ".join(text.split())


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command: library and I/O errors become one line on stderr and exit 1."""

    @functools.wraps(fn)
    def command(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (TokenwardError, OSError, ValueError) as exc:
            fail(describe(exc))

    return command


def usage_error(message: str) -> NoReturn:
    """Bad command-line input: one line and exit 2, like click's own usage errors."""
    fail(" ".join(f"error: {message}".split()), code=2)


def as_option(hint: str, parse: Callable[[T], R], value: T) -> R:
    """Parse an option's value; a ValueError is a usage error naming the option."""
    try:
        return parse(value)
    except ValueError as exc:
        usage_error(f"{hint}: {exc}")
