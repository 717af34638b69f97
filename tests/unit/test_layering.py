"""The boundaries of DESIGN.md "Layout", checked on the source's import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tokenward"
LIGHT = [
    "jose",
    "claims.py",
    "keys.py",
    "tokens.py",
    "rotation.py",
    "revocation.py",
    "sdk",
    "clock.py",
    "errors.py",
]
EDGES = {"cli.py", "cli", "server"}  # where settings (the environment) may be read


def _modules(*names: str) -> list[Path]:
    out: list[Path] = []
    for name in names:
        path = SRC / name
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else [])
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", _modules(*LIGHT), ids=lambda p: str(p.relative_to(SRC)))
def test_light_modules_never_import_server_or_store(path: Path) -> None:
    bad = {m for m in _imports(path) if m.startswith(("tokenward.server", "tokenward.store"))}
    assert not bad, f"{path.name} imports {bad}"


def test_joserfc_only_inside_jose() -> None:
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "jose" not in p.relative_to(SRC).parts[:1]
        and any(m.split(".")[0] == "joserfc" for m in _imports(p))
    ]
    assert offenders == []


def test_environment_is_read_only_at_the_edges() -> None:
    offenders = []
    for p in SRC.rglob("*.py"):
        if p.relative_to(SRC).parts[0] in EDGES:
            continue
        text = p.read_text()
        if "os.environ" in text or "getenv(" in text:
            offenders.append(str(p.relative_to(SRC)))
    assert offenders == []


def test_modules_stay_small() -> None:
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert big == {}
