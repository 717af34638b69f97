"""``tokenward users`` and ``tokenward clients``: accounts and OAuth clients in the store.

Every test runs against a fresh data directory and SQLite file in tmp_path (HOME and
XDG_DATA_HOME point there too), with small argon2 parameters from the environment.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from tokenward.cli import clients, users
from tokenward.server.passwords import Passwords
from tokenward.store import open_store
from tokenward.store.base import Client, User

PASSWORD = "correct horse battery staple"

# The sub-apps as `tokenward` mounts them (cli/__init__.py registers them the same way).
app = typer.Typer()
app.add_typer(users.app, name="users")
app.add_typer(clients.app, name="clients")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tokenward.db"


@pytest.fixture
def runner(tmp_path: Path, db: Path) -> CliRunner:
    return CliRunner(
        env={
            "TOKENWARD_DATA_DIR": str(tmp_path / "data"),
            "TOKENWARD_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "TOKENWARD_ARGON2_MEMORY_KIB": "8192",
            "TOKENWARD_ARGON2_TIME_COST": "1",
            "TOKENWARD_MASTER_KEY": None,
            "TOKENWARD_CONFIG": None,
            "TOKENWARD_PROFILE": None,
            "HOME": str(tmp_path / "home"),
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
        }
    )


def run(
    runner: CliRunner,
    *args: str,
    input: str | None = None,
    env: dict[str, str | None] | None = None,
) -> Result:
    return runner.invoke(app, list(args), input=input, env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result.stdout


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def stored_user(db: Path, name: str) -> User | None:
    if not db.exists():  # the command failed before it opened the store
        return None

    async def get() -> User | None:
        store = open_store(f"sqlite+aiosqlite:///{db}")
        try:
            return await store.get_user_by_name(name)
        finally:
            await store.close()

    return asyncio.run(get())


def stored_client(db: Path, client_id: str) -> Client | None:
    if not db.exists():
        return None

    async def get() -> Client | None:
        store = open_store(f"sqlite+aiosqlite:///{db}")
        try:
            return await store.get_client(client_id)
        finally:
            await store.close()

    return asyncio.run(get())


def verifies(password_hash: str, password: str) -> bool:
    return Passwords(time_cost=1, memory_kib=8192).verify(password_hash, password)


# -- users add -----------------------------------------------------------------------------
def test_add_with_password_stdin_stores_an_argon2_hash(runner: CliRunner, db: Path) -> None:
    out = ok(
        run(
            runner,
            "users",
            "add",
            "alice",
            "--password-stdin",
            "--role",
            "admin",
            "--role",
            "ops",
            input=PASSWORD + "\n",
        )
    )
    user = stored_user(db, "alice")
    assert user is not None
    assert out.strip() == user.id
    assert user.roles == ("admin", "ops")
    assert user.password_hash.startswith("$argon2id$")
    assert verifies(user.password_hash, PASSWORD)
    assert PASSWORD not in out


def test_add_prompts_twice_with_hidden_input(runner: CliRunner, db: Path) -> None:
    result = run(runner, "users", "add", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    ok(result)
    assert PASSWORD not in result.output  # hidden input is never echoed
    user = stored_user(db, "bob")
    assert user is not None and verifies(user.password_hash, PASSWORD)


def test_add_prompt_mismatch_asks_again(runner: CliRunner, db: Path) -> None:
    result = run(
        runner, "users", "add", "bob", input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n"
    )
    ok(result)
    user = stored_user(db, "bob")
    assert user is not None and verifies(user.password_hash, PASSWORD)


def test_add_duplicate_is_one_line_exit_1(runner: CliRunner) -> None:
    ok(run(runner, "users", "add", "alice", "--password-stdin", input=PASSWORD + "\n"))
    line = one_line_error(
        run(runner, "users", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    )
    assert "taken" in line and PASSWORD not in line


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [
        ("alice", "short\n", 1),  # password policy
        ("alice", "password\n", 1),  # too common
        ("bad name!", PASSWORD + "\n", 1),
        ("alice", "\n", 2),  # empty on stdin: usage error
    ],
)
def test_add_rejects_bad_input_with_one_line(
    runner: CliRunner, db: Path, name: str, password: str, code: int
) -> None:
    line = one_line_error(
        run(runner, "users", "add", name, "--password-stdin", input=password), code
    )
    assert line.startswith("error:")
    assert stored_user(db, name) is None


def test_data_dir_option_overrides_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    ok(
        run(
            runner,
            "users",
            "add",
            "alice",
            "--password-stdin",
            "--data-dir",
            str(other),
            input=PASSWORD + "\n",
            env={"TOKENWARD_DATABASE_URL": None},  # default: SQLite inside the data dir
        )
    )
    assert (other / "tokenward.db").exists()
    assert stored_user(other / "tokenward.db", "alice") is not None
    assert not (tmp_path / "data" / "tokenward.db").exists()


# -- users list / disable / enable ---------------------------------------------------------
def test_list_table_and_json(runner: CliRunner) -> None:
    for name, role in (("alice", "admin"), ("bob", "reader")):
        ok(
            run(
                runner,
                "users",
                "add",
                name,
                "--password-stdin",
                "--role",
                role,
                input=PASSWORD + "\n",
            )
        )
    rows = json.loads(ok(run(runner, "users", "list", "--json")))
    assert {(r["username"], tuple(r["roles"])) for r in rows} == {
        ("alice", ("admin",)),
        ("bob", ("reader",)),
    }
    assert all(
        set(r) == {"id", "username", "roles", "disabled", "locked_until", "created_at"}
        for r in rows
    )
    table = ok(run(runner, "users", "list"))
    assert "alice" in table and "bob" in table and "argon2" not in table


def test_list_empty_store(runner: CliRunner) -> None:
    assert json.loads(ok(run(runner, "users", "list", "--json"))) == []


def test_disable_and_enable(runner: CliRunner, db: Path) -> None:
    ok(run(runner, "users", "add", "alice", "--password-stdin", input=PASSWORD + "\n"))
    assert "disabled" in ok(run(runner, "users", "disable", "alice"))
    user = stored_user(db, "alice")
    assert user is not None and user.disabled and user.token_version == 1
    rows = json.loads(ok(run(runner, "users", "list", "--json")))
    assert rows[0]["disabled"] is True
    assert "enabled" in ok(run(runner, "users", "enable", "alice"))
    user = stored_user(db, "alice")
    assert user is not None and not user.disabled


def test_disable_unknown_user_is_one_line(runner: CliRunner) -> None:
    line = one_line_error(run(runner, "users", "disable", "ghost"))
    assert "ghost" in line


# -- clients add ---------------------------------------------------------------------------
def test_clients_add_prints_the_secret_once_and_stores_only_a_hash(
    runner: CliRunner, db: Path
) -> None:
    result = run(
        runner,
        "clients",
        "add",
        "svc",
        "--name",
        "Service",
        "--scope",
        "read",
        "--scope",
        "write",
        "--grant",
        "client_credentials",
    )
    out = ok(result)
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["client_id"] == "svc"
    secret = lines["client_secret"]
    assert len(secret) >= 43  # 256 bits, base64url
    client = stored_client(db, "svc")
    assert client is not None
    assert client.secret_hash is not None and client.secret_hash.startswith("$argon2id$")
    assert verifies(client.secret_hash, secret)
    assert (client.name, client.scopes, client.grant_types) == (
        "Service",
        ("read", "write"),
        ("client_credentials",),
    )
    assert secret.encode() not in db.read_bytes()  # nowhere in the database file
    listed = ok(run(runner, "clients", "list", "--json"))
    assert secret not in listed and "argon2" not in listed
    assert json.loads(listed)[0]["confidential"] is True


def test_clients_add_public_has_no_secret(runner: CliRunner, db: Path) -> None:
    out = ok(run(runner, "clients", "add", "spa", "--public", "--scope", "read"))
    assert "client_secret" not in out
    client = stored_client(db, "spa")
    assert client is not None
    assert client.secret_hash is None and client.grant_types == ("refresh_token",)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["bad id!"], 1),
        (["spa", "--public", "--grant", "client_credentials"], 1),
        (["svc", "--grant", "password"], 2),
        (["svc", "--scope", 'has"quote'], 1),
    ],
)
def test_clients_add_rejects_bad_input(
    runner: CliRunner, db: Path, args: list[str], code: int
) -> None:
    result = run(runner, "clients", "add", *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert stored_client(db, args[0]) is None


def test_clients_add_duplicate_is_one_line(runner: CliRunner) -> None:
    ok(run(runner, "clients", "add", "svc"))
    line = one_line_error(run(runner, "clients", "add", "svc"))
    assert line.startswith("error:") and "client_secret" not in line


@pytest.mark.parametrize(
    "url", ["mysql://db.example/tokenward", "sqlite+aiosqlite:///{tmp}/not-a-database.db"]
)
def test_store_problems_are_one_line_without_the_url(
    runner: CliRunner, tmp_path: Path, url: str
) -> None:
    (tmp_path / "not-a-database.db").write_bytes(b"this is not SQLite " * 100)
    env: dict[str, str | None] = {"TOKENWARD_DATABASE_URL": url.format(tmp=tmp_path)}
    line = one_line_error(run(runner, "users", "list", env=env))
    assert line.startswith("error:")
    assert "db.example" not in line and "not-a-database" not in line


def test_bad_settings_in_the_environment_are_one_line(runner: CliRunner) -> None:
    line = one_line_error(run(runner, "users", "list", env={"TOKENWARD_ACCESS_TTL": "forever"}))
    assert "access_ttl" in line and "forever" not in line
