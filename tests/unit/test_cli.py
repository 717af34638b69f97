"""The ``tokenward`` CLI: key store commands, token sign/verify/decode, errors at the edge.

Every test points TOKENWARD_DATA_DIR, HOME and XDG_DATA_HOME into tmp_path, so the real
home directory is never touched; expiry is tested with a token signed in the past by the
library under a FrozenClock, never by sleeping.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tokenward import FrozenClock, Issuer, KeyRing
from tokenward.cli import app
from tokenward.cli.common import Settings, describe
from tokenward.cli.parsing import claim_value, decode_unverified, parse_claims, parse_duration
from tokenward.errors import ExpiredToken
from tokenward.keystore import load_keyring, save_keyring

ISS = "https://issuer.example"
AUD = "https://api.example"
MASTER = bytes(range(32))
MASTER_B64 = base64.urlsafe_b64encode(MASTER).rstrip(b"=").decode()
OTHER_MASTER_B64 = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()


# -- fixtures and helpers ------------------------------------------------------------------
@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {
        "TOKENWARD_DATA_DIR": str(data_dir),
        "TOKENWARD_MASTER_KEY": MASTER_B64,
        "TOKENWARD_ISSUER": ISS,
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }


@pytest.fixture
def runner(env: dict[str, str]) -> CliRunner:
    return CliRunner(env=env)


def run(runner: CliRunner, *args: str, input: str | None = None, **env: str | None) -> Result:
    return runner.invoke(app, list(args), input=input, env=env or None)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result.stdout


def one_line_error(result: Result, code: int = 1) -> str:
    """A failed command: the exit code, exactly one stderr line, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def generate(runner: CliRunner, *args: str) -> str:
    kid = ok(run(runner, "keys", "generate", *args)).strip()
    assert kid and "\n" not in kid
    return kid


def keys_json(runner: CliRunner) -> list[dict[str, Any]]:
    rows = json.loads(ok(run(runner, "keys", "list", "--json")))
    assert isinstance(rows, list)
    return rows


def export_jwks(runner: CliRunner, tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(ok(run(runner, "keys", "jwks")))
    return path


def sign(runner: CliRunner, *args: str) -> str:
    return ok(run(runner, "token", "sign", "--sub", "alice", "--aud", AUD, *args)).strip()


def header_kid(token: str) -> str:
    return str(decode_unverified(token)["header"]["kid"])


@pytest.fixture
def kid(runner: CliRunner) -> str:
    return generate(runner)


@pytest.fixture
def jwks_file(runner: CliRunner, kid: str, tmp_path: Path) -> Path:
    return export_jwks(runner, tmp_path)


# -- keys ----------------------------------------------------------------------------------
def test_generate_list_sign_verify_roundtrip(runner: CliRunner, tmp_path: Path) -> None:
    kid = generate(runner, "--alg", "ES256")
    table = ok(run(runner, "keys", "list"))
    assert kid in table and "active" in table and "ES256" in table
    jwks = export_jwks(runner, tmp_path)
    token = sign(
        runner, "--ttl", "15m", "--scope", "a b", "--claim", "n=5", "--claim", "role=admin"
    )
    assert header_kid(token) == kid

    result = run(runner, "token", "verify", "--jwks", str(jwks), "--iss", ISS, "--aud", AUD, token)
    claims = json.loads(ok(result))
    assert claims["sub"] == "alice" and claims["iss"] == ISS and claims["aud"] == AUD
    assert claims["scope"] == "a b" and claims["n"] == 5 and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 900


def test_master_key_file_is_created_private(runner: CliRunner, data_dir: Path) -> None:
    ok(run(runner, "keys", "generate", TOKENWARD_MASTER_KEY=None))  # no env key: a file
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("master.key", "keys.json"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    ok(run(runner, "keys", "list", TOKENWARD_MASTER_KEY=None))  # the file opens the store
    line = one_line_error(run(runner, "keys", "list"))  # the env key wins, and is wrong here
    assert "master key does not open" in line


def test_generate_next_is_published_but_does_not_sign(runner: CliRunner, kid: str) -> None:
    nxt = generate(runner, "--next")
    states = {r["kid"]: r["state"] for r in keys_json(runner)}
    assert states == {kid: "active", nxt: "next"}
    jwks = json.loads(ok(run(runner, "keys", "jwks")))
    assert {k["kid"] for k in jwks["keys"]} == {kid, nxt}
    assert header_kid(sign(runner)) == kid


def test_generate_active_retires_previous(runner: CliRunner, kid: str) -> None:
    new = generate(runner, "--alg", "EdDSA")
    rows = {r["kid"]: r for r in keys_json(runner)}
    assert rows[kid]["state"] == "retiring" and rows[kid]["retiring_at"].endswith("Z")
    assert rows[new]["state"] == "active" and rows[new]["alg"] == "EdDSA"


def test_refresh_keys_are_not_in_the_jwks(runner: CliRunner, kid: str) -> None:
    refresh = generate(runner, "--purpose", "refresh")
    rows = {r["kid"]: r for r in keys_json(runner)}
    assert rows[refresh]["purpose"] == "refresh" and rows[refresh]["state"] == "active"
    assert rows[kid]["state"] == "active"  # other purpose: untouched
    jwks = json.loads(ok(run(runner, "keys", "jwks")))
    assert [k["kid"] for k in jwks["keys"]] == [kid]


def test_list_json_never_contains_key_material(runner: CliRunner, data_dir: Path) -> None:
    for alg in ("ES256", "EdDSA", "HS256"):
        generate(runner, "--alg", alg)
    text = ok(run(runner, "keys", "list", "--json"))
    table = ok(run(runner, "keys", "list"))
    rows = json.loads(text)
    assert len(rows) == 3
    for row in rows:
        assert set(row) == {
            "kid", "alg", "purpose", "state",
            "created_at", "activated_at", "retiring_at", "retired_at",
        }  # fmt: skip
    stored = json.loads((data_dir / "keys.json").read_text())
    for output in (text, table):
        assert '"d"' not in output and "sealed" not in output and "PRIVATE KEY" not in output
        assert all(entry["sealed"] not in output for entry in stored["keys"])
        assert MASTER_B64 not in output
    ring = load_keyring(data_dir, MASTER)
    secret = next(k.material for k in ring if k.symmetric)
    assert base64.urlsafe_b64encode(secret).rstrip(b"=").decode() not in text


def test_jwks_is_public_only(runner: CliRunner, kid: str) -> None:
    jwks = json.loads(ok(run(runner, "keys", "jwks")))
    (key,) = jwks["keys"]
    assert key["kid"] == kid and key["alg"] == "ES256"
    assert "d" not in key and "k" not in key


def test_force_rotate_replaces_the_active_key(runner: CliRunner, kid: str) -> None:
    out = ok(run(runner, "keys", "rotate", "--force")).splitlines()
    assert len(out) == 2 and out[0].startswith("activated ") and out[1] == f"retiring {kid}"
    new = out[0].removeprefix("activated ")
    states = {r["kid"]: r["state"] for r in keys_json(runner)}
    assert states == {kid: "retiring", new: "active"}
    assert header_kid(sign(runner)) == new


def test_scheduled_rotate_on_a_fresh_ring_has_nothing_to_do(runner: CliRunner, kid: str) -> None:
    assert ok(run(runner, "keys", "rotate")).strip() == "nothing to do"
    assert [r["kid"] for r in keys_json(runner)] == [kid]


def test_scheduled_rotate_publishes_next_key_when_due(runner: CliRunner, data_dir: Path) -> None:
    ring = KeyRing()
    old = ring.generate("ES256", time.time() - 40 * 86400)  # active for longer than the period
    save_keyring(ring, data_dir, MASTER)
    out = ok(run(runner, "keys", "rotate", "--period", "30d", "--publish-ahead", "1d"))
    (line,) = out.splitlines()
    assert line.startswith("published ")
    states = {r["kid"]: r["state"] for r in keys_json(runner)}
    assert states == {old.kid: "active", line.removeprefix("published "): "next"}
    # The next key must stay published for publish-ahead before it may sign.
    assert ok(run(runner, "keys", "rotate")).strip() == "nothing to do"


def test_rotate_needs_an_existing_store(runner: CliRunner, data_dir: Path) -> None:
    assert "no key store" in one_line_error(run(runner, "keys", "rotate"))
    assert not data_dir.exists()


# -- token verify --------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["dash", "no-argument"])
def test_verify_reads_the_token_from_stdin(runner: CliRunner, jwks_file: Path, how: str) -> None:
    token = sign(runner)
    args = ["token", "verify", "--jwks", str(jwks_file), "--aud", AUD]
    result = run(runner, *args, *(["-"] if how == "dash" else []), input=f"  {token}\n\n")
    assert json.loads(ok(result))["sub"] == "alice"


def test_verify_defaults_the_issuer_from_the_environment(
    runner: CliRunner, jwks_file: Path
) -> None:
    token = sign(runner)
    args = ["token", "verify", "--jwks", str(jwks_file), "--aud", AUD, token]
    ok(run(runner, *args))
    line = one_line_error(run(runner, *args, TOKENWARD_ISSUER="https://other.example"))
    assert line.startswith("invalid_token: invalid_claims")


def test_verify_rejects_an_expired_token(
    runner: CliRunner, jwks_file: Path, data_dir: Path
) -> None:
    ring = load_keyring(data_dir, MASTER)
    past = FrozenClock(time.time() - 3600)
    token = Issuer(ring, issuer=ISS, clock=past).issue("alice", AUD, ttl=60)
    result = run(runner, "token", "verify", "--jwks", str(jwks_file), "--aud", AUD, token)
    assert one_line_error(result).startswith("invalid_token: expired")
    assert result.stdout == ""


def test_verify_rejects_a_tampered_token(runner: CliRunner, jwks_file: Path) -> None:
    header, payload, sig = sign(runner).split(".")
    claims = decode_unverified(f"{header}.{payload}.{sig}")["payload"] | {"sub": "mallory"}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    token = f"{header}.{forged}.{sig}"
    result = run(runner, "token", "verify", "--jwks", str(jwks_file), "--aud", AUD, token)
    assert one_line_error(result).startswith("invalid_token: bad_signature")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--aud", "https://other.example"], "invalid_claims"),
        (["--aud", AUD, "--iss", "https://other.example"], "invalid_claims"),
    ],
)
def test_verify_rejects_wrong_audience_or_issuer(
    runner: CliRunner, jwks_file: Path, args: list[str], code: str
) -> None:
    token = sign(runner)
    result = run(runner, "token", "verify", "--jwks", str(jwks_file), *args, token)
    assert one_line_error(result).startswith(f"invalid_token: {code}")


def test_verify_accepts_one_of_several_audiences(runner: CliRunner, jwks_file: Path) -> None:
    token = sign(runner, "--aud", "https://b.example")
    assert decode_unverified(token)["payload"]["aud"] == [AUD, "https://b.example"]
    args = ["--jwks", str(jwks_file), "--aud", "https://b.example"]
    ok(run(runner, "token", "verify", *args, token))


def test_verify_garbage_token(runner: CliRunner, jwks_file: Path) -> None:
    result = run(runner, "token", "verify", "--jwks", str(jwks_file), "--aud", AUD, "garbage")
    assert one_line_error(result).startswith("invalid_token: malformed")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory"),
        ("not json {", "is not JSON"),
        ("[1, 2]", "is not a JWK Set"),
        ('{"keys": [{"kty": "EC", "kid": "x"}]}', "error: "),
    ],
)
def test_verify_with_an_unusable_jwks_file(
    runner: CliRunner, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad-jwks.json"
    if content is not None:
        path.write_text(content)
    result = run(runner, "token", "verify", "--jwks", str(path), "--aud", AUD, "a.b.c")
    assert message in one_line_error(result)


class _JWKSHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url(jwks_file: Path) -> Iterator[str]:
    handler = type("Handler", (_JWKSHandler,), {"body": jwks_file.read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


def test_verify_against_a_jwks_url(runner: CliRunner, jwks_url: str) -> None:
    token = sign(runner)
    result = run(runner, "token", "verify", "--jwks", jwks_url, "--aud", AUD, token)
    assert json.loads(ok(result))["sub"] == "alice"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/jwks", "cannot fetch JWKS"),
        ("http://jwks.example/jwks", "must be https"),
    ],
)
def test_verify_with_an_unusable_jwks_url(runner: CliRunner, url: str, message: str) -> None:
    result = run(runner, "token", "verify", "--jwks", url, "--aud", AUD, "a.b.c")
    assert message in one_line_error(result)


# -- token sign / decode -------------------------------------------------------------------
def test_sign_claim_values_and_options(runner: CliRunner, kid: str) -> None:
    token = sign(
        runner,
        *("--claim", "n=5", "--claim", "flag=true", "--claim", "roles=[1,2]"),
        *("--claim", "x=NaN", "--claim", "name=bob", "--claim", "empty="),
        *("--client-id", "cli-test", "--iss", "https://other.example", "--ttl", "90"),
    )
    payload = decode_unverified(token)["payload"]
    assert payload["n"] == 5 and payload["flag"] is True and payload["roles"] == [1, 2]
    assert payload["x"] == "NaN" and payload["name"] == "bob" and payload["empty"] == ""
    assert payload["client_id"] == "cli-test" and payload["iss"] == "https://other.example"
    assert payload["exp"] - payload["iat"] == 90


def test_decode_labels_the_output_unverified(runner: CliRunner, kid: str) -> None:
    token = sign(runner)
    result = run(runner, "token", "decode", token)
    doc = json.loads(ok(result))  # stdout is pure JSON
    assert "UNVERIFIED" in result.stderr
    assert doc["header"] == {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    assert doc["payload"]["sub"] == "alice"
    assert json.loads(ok(run(runner, "token", "decode", input=token + "\n"))) == doc


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "",
        "a.b.c",
        "é.é.é",
        "eyJhbGciOiJub25lIn0.e30",
        "a.b.c.d.e",
        "W10.W10.sig",  # header and payload are JSON arrays
        base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=") + ".e30.x",
        "e30." + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("=") + ".x",
    ],
)
def test_decode_garbage_is_one_line_and_exit_1(runner: CliRunner, token: str) -> None:
    line = one_line_error(run(runner, "token", "decode", token))
    assert line.startswith("error: ")


# -- bad input everywhere ------------------------------------------------------------------
def test_wrong_master_key_is_one_line(runner: CliRunner, kid: str) -> None:
    line = one_line_error(run(runner, "keys", "list", TOKENWARD_MASTER_KEY=OTHER_MASTER_B64))
    assert line == "error: the master key does not open this key store"


def test_malformed_master_key(runner: CliRunner, data_dir: Path) -> None:
    line = one_line_error(run(runner, "keys", "generate", TOKENWARD_MASTER_KEY="not-32-bytes"))
    assert "TOKENWARD_MASTER_KEY" in line
    assert not (data_dir / "keys.json").exists()


def test_missing_key_store_creates_nothing(runner: CliRunner, data_dir: Path) -> None:
    for args in (["keys", "list"], ["keys", "jwks"], ["token", "sign", "--sub", "a", "--aud", AUD]):
        line = one_line_error(run(runner, *args, TOKENWARD_MASTER_KEY=None))
        assert "no key store" in line and "tokenward keys generate" in line
    assert not data_dir.exists()


def test_key_store_with_a_lost_master_key(runner: CliRunner, data_dir: Path) -> None:
    generate(runner)  # sealed with the env key; there is no master.key file
    line = one_line_error(run(runner, "keys", "list", TOKENWARD_MASTER_KEY=None))
    assert "no master key" in line
    assert not (data_dir / "master.key").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "generate", "--alg", "ES999"], "--alg: unsupported algorithm 'ES999'"),
        (["keys", "generate", "--alg", "none"], "unsupported algorithm"),
        (["keys", "rotate", "--alg", "es256"], "unsupported algorithm"),
        (["keys", "rotate", "--period", "soon"], "--period: 'soon' is not a duration"),
        (["keys", "rotate", "--period", "1d", "--publish-ahead", "2d"], "shorter than period"),
        (["token", "sign", "--sub", "a", "--aud", AUD, "--ttl", "5x"], "is not a duration"),
        (["token", "sign", "--sub", "a", "--aud", AUD, "--ttl", "0"], "longer than zero"),
        (["token", "sign", "--sub", "a", "--aud", AUD, "--claim", "novalue"], "NAME=VALUE"),
        (["token", "sign", "--sub", "a", "--aud", AUD, "--claim", "=v"], "NAME=VALUE"),
        (["token", "sign", "--sub", "a", "--aud", AUD, "--claim", "sub=bob"], "set by the issuer"),
        (
            ["token", "sign", "--sub", "a", "--aud", AUD, "--claim", "a=1", "--claim", "a=2"],
            "twice",
        ),
    ],
)
def test_bad_values_are_usage_errors(
    runner: CliRunner, kid: str, args: list[str], message: str
) -> None:
    assert message in one_line_error(run(runner, *args), code=2)


def test_click_level_usage_errors_exit_2(runner: CliRunner) -> None:
    result = run(runner, "token", "verify", "--jwks", "x", "--aud", AUD, "--leeway", "301", "t")
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = run(runner, "token", "sign", "--aud", AUD)  # --sub missing
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_ttl_beyond_the_issuer_cap_fails(runner: CliRunner, kid: str) -> None:
    line = one_line_error(run(runner, "token", "sign", "--sub", "a", "--aud", AUD, "--ttl", "2d"))
    assert "ttl must be between" in line


def test_help_and_version(runner: CliRunner) -> None:
    help_text = ok(run(runner, "--help"))
    assert "keys" in help_text and "token" in help_text
    assert ok(run(runner, "--version")).startswith("tokenward ")


# -- the pieces ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("30d", 2_592_000), ("3600", 3600), (" 2h ", 7200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "-5s", "1.5h", "h", "15 m", "9" * 12, "0"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_duration_may_allow_zero() -> None:
    assert parse_duration("0s", allow_zero=True) == 0


CLAIM_VALUES: list[tuple[str, Any]] = [
    ("5", 5),
    ("1.5", 1.5),
    ("true", True),
    ("null", None),
    ("[1]", [1]),
    ('{"a":1}', {"a": 1}),
    ("admin", "admin"),
    ("NaN", "NaN"),  # not JSON, though Python's json would take it
    ("Infinity", "Infinity"),
    ("", ""),
    ("[" * 5000, "[" * 5000),
]


@pytest.mark.parametrize(("raw", "value"), CLAIM_VALUES)
def test_claim_value(raw: str, value: Any) -> None:
    assert claim_value(raw) == value


def test_parse_claims_splits_on_the_first_equals() -> None:
    assert parse_claims(["url=https://x.example/?a=b", "n=1"]) == {
        "url": "https://x.example/?a=b",
        "n": 1,
    }


def test_settings_from_env(tmp_path: Path) -> None:
    s = Settings.from_env({"TOKENWARD_DATA_DIR": str(tmp_path), "TOKENWARD_MASTER_KEY": ""})
    assert s.data_dir == tmp_path and s.issuer == "http://localhost:8000"
    assert s.master_key_value is None
    s = Settings.from_env({"XDG_DATA_HOME": str(tmp_path), "TOKENWARD_MASTER_KEY": MASTER_B64})
    assert s.data_dir == tmp_path / "tokenward" and MASTER_B64 not in repr(s)


def test_settings_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".local" / "share" / "tokenward"
    assert Settings.from_env({}).data_dir == expected
    assert Settings.from_env({"XDG_DATA_HOME": "relative/dir"}).data_dir == expected  # XDG spec


def test_describe_is_one_line() -> None:
    assert (
        describe(ExpiredToken("token\nhas expired")) == "invalid_token: expired (token has expired)"
    )
    assert describe(FileNotFoundError(2, "No such file", "/x")) == "error: No such file: /x"
    assert describe(ValueError("bad")) == "error: bad"


# -- the real entry point ------------------------------------------------------------------
def _subprocess(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenward.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_never_prints_a_traceback(env: dict[str, str]) -> None:
    for args, message in [
        (("token", "decode", "garbage"), "error: not a JWT"),
        (("keys", "list"), "error: no key store"),
    ]:
        proc = _subprocess(env, *args)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        assert proc.stderr.startswith(message)


def test_console_script_roundtrip(env: dict[str, str], tmp_path: Path) -> None:
    kid = _subprocess(env, "keys", "generate").stdout.strip()
    token = _subprocess(env, "token", "sign", "--sub", "alice", "--aud", AUD).stdout.strip()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(_subprocess(env, "keys", "jwks").stdout)
    proc = _subprocess(env, "token", "verify", "--jwks", str(jwks), "--aud", AUD, token)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sub"] == "alice" and header_kid(token) == kid
    wrong = _subprocess({**env, "TOKENWARD_MASTER_KEY": OTHER_MASTER_B64}, "keys", "list")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
