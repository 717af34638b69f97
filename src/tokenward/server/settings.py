"""Server settings: ``TOKENWARD_*`` environment, an optional TOML file, profiles dev / prod.

Read only at the edges (CLI, ASGI entry); everything else receives a Settings instance.
Precedence: init arguments > environment > TOML file (``TOKENWARD_CONFIG``) > defaults.
``prod`` refuses to start on insecure settings and says which (``problems()``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tokenward.errors import ConfigError

__all__ = ["Settings", "default_data_dir"]

MIN_HMAC_SECRET = 32


def _origin(value: str) -> str:
    """An explicit web origin ``scheme://host[:port]``, lower-cased as browsers send it."""
    parts = urlsplit(value.strip().lower())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "*" in value
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"CORS origin {value!r} must be scheme://host[:port], no wildcard")
    return f"{parts.scheme}://{parts.netloc}"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tokenward"


class Settings(BaseSettings):
    """Every knob of the server, with secure defaults."""

    model_config = SettingsConfigDict(env_prefix="TOKENWARD_", extra="forbid")

    profile: Literal["dev", "prod"] = "dev"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # default: SQLite file in data_dir
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    issuer: str = "http://127.0.0.1:8000"
    audience: str = ""  # default: the issuer
    master_key: SecretStr | None = None
    admin_password: SecretStr | None = None

    # keys and tokens
    signing_alg: str = "ES256"
    hmac_secret: SecretStr | None = None  # only for signing_alg HS*
    access_ttl: int = Field(default=900, ge=30, le=86400)
    key_rotation_days: float = Field(default=30, gt=0)
    key_publish_ahead_hours: float = Field(default=24, gt=0)

    # refresh families (SECURITY.md "Refresh tokens")
    refresh_absolute_ttl: int = Field(default=30 * 86400, ge=60)
    refresh_idle_ttl: int = Field(default=14 * 86400, ge=60)
    refresh_grace_seconds: float = Field(default=0, ge=0, le=10)

    # cookies, CSRF, CORS
    cookie_mode: bool = False  # refresh token in a cookie by default (clients may ask per request)
    cookie_secure: bool = True
    cookie_samesite: Literal["strict", "lax", "none"] = "strict"
    cookie_domain: str | None = None  # cross-domain cookies drop the __Host- prefix
    cors_origins: list[str] = Field(default_factory=list)

    # login protection
    password_min_length: int = Field(default=8, ge=8, le=128)
    login_rate_per_ip: str = "20/minute"
    login_rate_per_account: str = "10/minute"
    token_rate_per_ip: str = "60/minute"
    # per account on the token endpoints: refreshes per user (every device of the user
    # together), client_credentials grants per client
    token_rate_per_account: str = "60/minute"
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_base_seconds: float = Field(default=30, gt=0)
    lockout_max_seconds: float = Field(default=3600, gt=0)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19456, ge=8192)
    argon2_parallelism: int = Field(default=1, ge=1)

    # scale-out (docs/scale-out.md): several nodes on one PostgreSQL and one Redis
    redis_prefix: str = Field(default="tokenward", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    keyring_location: Literal["auto", "file", "store"] = "auto"  # auto: store on PostgreSQL
    revocation_poll_seconds: float = Field(default=2.0, gt=0, le=60)  # without Redis
    revocation_event_retention: float = Field(default=86400, ge=600)  # >= 2 x access_ttl used
    revocation_feed_public: bool = False  # GET /api/v1/revocations without a token

    # /metrics: open (scrape it over an internal network only), or a Bearer token to present
    metrics_token: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    trust_proxy_headers: bool = False
    # uvicorn's per-request access log costs more than tokenward's own work on a fast route
    # (docs/benchmarks.md, forward-auth); audit events and /metrics cover what matters.
    access_log: bool = False

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("issuer must be an http(s) URL without query")
        return value.rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, values: list[str]) -> list[str]:
        # Credentials are allowed cross-origin, so every origin is named exactly: never "*",
        # "null" (sandboxed documents, file:) or a URL with a path (RFC 6454 §6.2).
        return [_origin(v) for v in values]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("TOKENWARD_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)

    # -- derived ------------------------------------------------------------------------
    @property
    def effective_audience(self) -> str:
        return self.audience or self.issuer

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tokenward.db'}"

    @property
    def https(self) -> bool:
        return self.issuer.startswith("https://")

    def problems(self) -> list[str]:
        """Insecure settings; in ``prod`` any of these refuses start-up."""
        found = []
        if not self.https:
            found.append("issuer must be an https:// URL")
        if not self.cookie_secure:
            found.append("cookie_secure must be on")
        if self.master_key is None:
            found.append("TOKENWARD_MASTER_KEY must be set (base64url, 32 bytes)")
        elif len(self.master_key.get_secret_value().strip()) < 43:
            found.append("TOKENWARD_MASTER_KEY is too short (32 bytes, base64url)")
        # Absent, a random HMAC secret is generated; a given one must be long enough (R9).
        secret = self.hmac_secret.get_secret_value().encode() if self.hmac_secret else None
        if (
            self.signing_alg.startswith("HS")
            and secret is not None
            and len(secret) < MIN_HMAC_SECRET
        ):
            found.append(f"{self.signing_alg} needs hmac_secret of >= {MIN_HMAC_SECRET} bytes")
        if self.cookie_samesite == "none" and not self.cookie_secure:
            found.append("SameSite=None cookies must be Secure")
        found.extend(
            f"CORS origin {o} must be https"
            for o in self.cors_origins
            if not o.startswith("https:")
        )
        return found

    def check(self) -> None:
        """Raise ConfigError listing every problem when the profile is prod."""
        problems = self.problems()
        if self.profile == "prod" and problems:
            raise ConfigError("refusing to start in prod: " + "; ".join(problems))
