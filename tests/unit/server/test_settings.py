"""Server settings: the TOKENWARD_ environment, a TOML file, and the prod profile's refusals.

Every test starts from an environment without any TOKENWARD_ variable, so the machine's
own configuration never leaks in.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tokenward.cli.server import server_settings
from tokenward.errors import ConfigError
from tokenward.server.settings import Settings

MASTER = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TOKENWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def secure(**over: Any) -> Settings:
    """A prod configuration with no problem at all, plus ``over``."""
    base: dict[str, Any] = {
        "profile": "prod",
        "data_dir": Path("data"),
        "issuer": "https://auth.example",
        "master_key": MASTER,
        "cors_origins": ["https://app.example"],
    }
    return Settings(**{**base, **over})


# -- sources -------------------------------------------------------------------------------
def test_environment_variables_use_the_tokenward_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARD_ACCESS_TTL", "600")
    monkeypatch.setenv("TOKENWARD_ISSUER", "https://id.example/")
    monkeypatch.setenv("TOKENWARD_CORS_ORIGINS", '["https://app.example"]')
    monkeypatch.setenv("ACCESS_TTL", "120")  # unprefixed: not ours
    s = Settings()
    assert s.access_ttl == 600
    assert s.issuer == "https://id.example"  # trailing slash removed: exact iss (R14)
    assert s.cors_origins == ["https://app.example"]


def test_environment_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARD_ACCESS_TTL", "5")  # below the 30 s floor
    with pytest.raises(ValidationError, match="access_ttl"):
        Settings()


def test_toml_file_named_by_tokenward_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "tokenward.toml"
    config.write_text('issuer = "https://toml.example"\naccess_ttl = 300\nport = 9000\n')
    monkeypatch.setenv("TOKENWARD_CONFIG", str(config))
    monkeypatch.setenv("TOKENWARD_PORT", "9100")
    s = Settings()
    assert (s.issuer, s.access_ttl) == ("https://toml.example", 300)
    assert s.port == 9100  # the environment overrides the file
    assert Settings(port=9200).port == 9200  # and arguments override both


def test_toml_file_with_an_unknown_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "tokenward.toml"
    config.write_text("acces_ttl = 300\n")  # a typo must not be ignored silently
    monkeypatch.setenv("TOKENWARD_CONFIG", str(config))
    with pytest.raises(ValidationError, match="acces_ttl"):
        Settings()


def test_defaults_are_an_embedded_dev_setup(tmp_path: Path) -> None:
    s = Settings()
    assert s.profile == "dev"
    assert s.data_dir == tmp_path / "xdg" / "tokenward"
    assert s.effective_database_url == f"sqlite:///{s.data_dir / 'tokenward.db'}"
    assert s.effective_audience == s.issuer
    assert s.cors_origins == []


@pytest.mark.parametrize("issuer", ["ftp://auth.example", "https://auth.example/?a=1", "auth"])
def test_issuer_must_be_an_http_url_without_query(issuer: str) -> None:
    with pytest.raises(ValidationError, match="issuer"):
        Settings(issuer=issuer)


# -- CORS origins --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "null",
        "https://*.example.com",
        "https://app.example/path",
        "app.example",
        "https://user@app.example",
        "https://app.example?x=1",
        "javascript://app.example",
    ],
)
def test_cors_origins_must_be_explicit(origin: str) -> None:
    with pytest.raises(ValidationError, match="CORS origin"):
        Settings(cors_origins=[origin])


def test_cors_origins_are_normalised_as_browsers_send_them() -> None:
    s = Settings(cors_origins=["HTTPS://App.Example:8443/", "http://localhost:3000"])
    assert s.cors_origins == ["https://app.example:8443", "http://localhost:3000"]


# -- the prod profile ----------------------------------------------------------------------
def test_a_secure_prod_configuration_starts() -> None:
    s = secure()
    assert s.problems() == []
    s.check()


INSECURE = [
    ({"issuer": "http://auth.example"}, "issuer must be an https:// URL"),
    ({"cookie_secure": False}, "cookie_secure must be on"),
    ({"master_key": None}, "TOKENWARD_MASTER_KEY must be set"),
    ({"master_key": MASTER[:20]}, "TOKENWARD_MASTER_KEY is too short"),
    ({"signing_alg": "HS256", "hmac_secret": "x" * 16}, "HS256 needs hmac_secret of >= 32 bytes"),
    ({"cors_origins": ["http://app.example"]}, "CORS origin http://app.example must be https"),
]


@pytest.mark.parametrize(("over", "message"), INSECURE, ids=[m for _, m in INSECURE])
def test_prod_refuses_each_insecure_setting_with_its_own_message(
    over: dict[str, Any], message: str
) -> None:
    s = secure(**over)
    assert len(s.problems()) == 1 and s.problems()[0].startswith(message)
    with pytest.raises(ConfigError, match="refusing to start in prod") as caught:
        s.check()
    assert message in str(caught.value)


def test_samesite_none_needs_secure_cookies() -> None:
    s = secure(cookie_samesite="none", cookie_secure=False)
    assert "SameSite=None cookies must be Secure" in s.problems()


def test_prod_lists_every_problem_on_one_line() -> None:
    s = secure(issuer="http://auth.example", cookie_secure=False, master_key=None)
    with pytest.raises(ConfigError) as caught:
        s.check()
    text = str(caught.value)
    assert "\n" not in text
    for _, message in INSECURE[:3]:
        assert message in text


@pytest.mark.parametrize(("over", "message"), INSECURE, ids=[m for _, m in INSECURE])
def test_dev_allows_the_same_settings(over: dict[str, Any], message: str) -> None:
    s = secure(profile="dev", **over)
    assert s.problems()  # still reported, for `serve` to warn about ...
    s.check()  # ... but dev starts


def test_a_long_enough_hmac_secret_is_fine() -> None:
    assert secure(signing_alg="HS256", hmac_secret="k" * 32).problems() == []


# -- `tokenward serve` options on top of the environment -----------------------------------
def test_serve_derives_the_issuer_from_its_listener_when_none_is_configured() -> None:
    s = server_settings(host="127.0.0.2", port=8123, data_dir=None, profile=None)
    assert (s.host, s.port, s.issuer) == ("127.0.0.2", 8123, "http://127.0.0.2:8123")
    assert server_settings(host="0.0.0.0", port=9000).issuer == "http://127.0.0.1:9000"
    assert server_settings(host="::1", port=9000).issuer == "http://[::1]:9000"


def test_serve_keeps_a_configured_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARD_ISSUER", "https://auth.example")
    monkeypatch.setenv("TOKENWARD_PORT", "9443")
    s = server_settings(port=None, profile="prod")
    assert (s.issuer, s.port, s.profile) == ("https://auth.example", 9443, "prod")
