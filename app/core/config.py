"""One Settings object: every `AMPLIFY_*` variable, also read from `.env`."""

import ipaddress
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/amplify.db"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _unmapped(network: IPNetwork) -> IPNetwork:
    """IPv4-mapped IPv6 as IPv4 (::ffff:10.0.0.0/104 → 10.0.0.0/8), as client_ip unmaps peers."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """Networks from comma-separated addresses and CIDRs ("127.0.0.1, 10.0.0.0/8, ::1")."""
    networks: list[IPNetwork] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            # strict: "10.0.0.1/8" is more likely a typo than a way to write 10.0.0.0/8
            network = ipaddress.ip_network(entry)
        except ValueError as exc:
            raise ValueError(f"invalid trusted proxy {entry!r}: {exc}") from None
        networks.append(_unmapped(network))
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMPLIFY_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None
    var_dir: Path = Path("./var")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    mail_from: str = "Amplify <amplify@localhost>"
    send_rate: float = Field(default=0.0, ge=0.0)
    smtp_connections: int = Field(default=4, ge=1, le=64)
    worker: Literal["on", "off"] = "on"
    scanner_window: int = Field(default=10, ge=0)
    unsubscribe_mailto: str | None = None
    click_retention_days: int = Field(default=90, ge=1)
    # Conversion attribution: the landing page's query parameter, and how long after a click
    # a conversion may still be attributed to it.
    attribution_param: str = "amp_cid"
    attribution_days: int = Field(default=90, ge=1, le=3650)
    # "127.0.0.1, 10.0.0.0/8, ::1" in the environment
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    click_flush_seconds: float = Field(default=0.1, gt=0, le=10)
    metrics_token: str | None = Field(default=None, min_length=16)
    # How long a verified API key is trusted without asking the database: the bound on how late
    # a revocation made by another process takes effect here (at most the minute `last_used_at`
    # is kept to); 0 asks the database on every request.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    db_pool_size: int = Field(default=10, ge=1, le=500)
    db_max_overflow: int = Field(default=20, ge=0, le=500)

    max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    worker_batch: int = Field(default=500, ge=1, le=10_000)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    pause_error_rate: float = Field(default=0.5, gt=0, le=1)
    pause_min_errors: int = Field(default=20, ge=1)

    dkim_selector: str | None = None
    dkim_private_key_file: Path | None = None
    dkim_domain: str | None = None
    bounce_address: str | None = None
    bounce_webhook_secret: SecretStr | None = None
    bounces_port: int = Field(default=2525, ge=1, le=65535)
    bounce_max_bytes: int = Field(default=1024 * 1024, ge=1024)

    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Waits after the 1st, 2nd … failed attempt; one more failure after the last gives up.
    webhook_retry_seconds: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_disable_after_seconds: float = Field(default=3 * 86400.0, gt=0)
    webhook_concurrency: int = Field(default=64, ge=1, le=1000)
    webhook_poll_seconds: float = Field(default=0.25, gt=0)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    import_max_rows: int = Field(default=100_000, ge=1)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("AMPLIFY_PUBLIC_URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("attribution_param")
    @classmethod
    def _attribution_param_is_a_plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.~-]{1,64}", value):
            raise ValueError(
                "AMPLIFY_ATTRIBUTION_PARAM must be a query parameter name of 1-64 letters, "
                "digits, '_', '.', '~' or '-' (like amp_cid)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "AMPLIFY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    def pool_options(self) -> dict[str, int]:
        """PostgreSQL connection pool per process (SQLite keeps SQLAlchemy's own)."""
        if self.is_sqlite:
            return {}
        return {"pool_size": self.db_pool_size, "max_overflow": self.db_max_overflow}

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies_parse(cls, value: object) -> object:
        return parse_trusted_proxies(value) if isinstance(value, str) else value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _retry_waits_are_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(wait < 0 for wait in value):
            raise ValueError("AMPLIFY_WEBHOOK_RETRY_SECONDS holds waits of 0 s or more")
        return value

    @model_validator(mode="after")
    def _webhook_lease_outlasts_a_post(self) -> "Settings":
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "AMPLIFY_WEBHOOK_LEASE_SECONDS must be longer than AMPLIFY_WEBHOOK_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_secret(self) -> "Settings":
        weak = self.secret_key is None or len(self.secret_key.get_secret_value()) < 32
        if self.env == "production" and weak:
            raise ValueError(
                "AMPLIFY_SECRET_KEY (at least 32 characters) is required when "
                "AMPLIFY_ENV=production"
            )
        return self

    @model_validator(mode="after")
    def _dkim_is_usable(self) -> "Settings":
        """A DKIM key that cannot sign stops every command at start, not the first mail."""
        if self.dkim_selector is None and self.dkim_private_key_file is None:
            if self.dkim_domain is not None:
                raise ValueError(
                    "AMPLIFY_DKIM_DOMAIN is set without AMPLIFY_DKIM_SELECTOR and "
                    "AMPLIFY_DKIM_PRIVATE_KEY_FILE"
                )
            return self
        if self.dkim_selector is None or self.dkim_private_key_file is None:
            raise ValueError(
                "DKIM signing needs both AMPLIFY_DKIM_SELECTOR and AMPLIFY_DKIM_PRIVATE_KEY_FILE"
            )
        from app.sending.dkim import DkimConfigError, DkimSigner

        try:
            DkimSigner.from_settings(self)
        except DkimConfigError as exc:
            raise ValueError(f"DKIM: {exc}") from None
        return self

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address_is_plain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.partition("@")
        if not at or not local or "+" in local or not re.fullmatch(r"[A-Za-z0-9._-]+", local):
            raise ValueError(
                "AMPLIFY_BOUNCE_ADDRESS must be a plain address like bounces@mail.example.com "
                "(letters, digits, '.', '_' or '-' before the @, no '+')"
            )
        if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", domain):
            raise ValueError("AMPLIFY_BOUNCE_ADDRESS needs a domain like mail.example.com")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def signing_key(self) -> str:
        """The secret for tokens and hashes; in development one is generated once and kept."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _development_secret(self.var_dir.resolve())


@lru_cache
def _development_secret(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
