"""Settings, read once from the environment (and an optional ``.env``) and validated at start-up.

A bad value stops start-up with an error that names the variable, never a stack trace deep in a request.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ProviderName = Literal["openrouter", "anthropic", "mock"]
CommaList = Annotated[list[str], NoDecode]

_FALSY = {"", "0", "false"}


class ConfigError(ValueError):
    """Raised when the environment holds a value the service cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, frozen=True,
    )

    # Storage
    database_url: str = "sqlite:///agentic.db"
    database_serverless: bool = Field(False, description="no connection pool (NullPool), for serverless hosts")
    database_pool_size: int = Field(5, ge=1, le=100)
    database_echo: bool = False
    database_listen_url: str | None = Field(
        None, description="direct PostgreSQL URL for LISTEN/NOTIFY when DATABASE_URL goes through a pooler")

    # Routing and providers
    use_queue: bool = False
    llm_provider: ProviderName = "openrouter"
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: AnyHttpUrl = AnyHttpUrl("https://openrouter.ai/api/v1")
    openrouter_referer: str | None = None
    openrouter_title: str = "agentic"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: AnyHttpUrl | None = None
    quick_models: CommaList = ["*-mini", "*-nano", "*haiku*", "*flash*", "mock-quick*"]
    slow_models: CommaList = ["*/o1*", "o1*", "*/o3*", "o3*", "*-r1*", "*opus*", "*thinking*", "mock-slow*"]
    queue_token_threshold: int = Field(4000, ge=1)
    default_route: Literal["direct", "queue"] = "direct"
    preview_model: str = Field("openai/gpt-4o-mini", min_length=1)
    provider_connect_timeout: float = Field(10.0, gt=0)
    provider_read_timeout: float = Field(120.0, gt=0, description="longest silence allowed between chunks")
    mock_latency_ms: int = Field(0, ge=0)
    mock_tokens_per_second: float = Field(0.0, ge=0, description="0 streams as fast as possible")

    # Long calls (see agentic.providers.longcalls)
    step_time_budget_seconds: float = Field(
        240.0, ge=1, description="longest a provider call streams inside one step before it pauses to continue")
    max_continuations: int = Field(
        40, ge=1, le=500, description="continuation segments allowed per call (bounded far under 1,000 steps)")
    offload_models: CommaList = [
        "openai/*", "o1*", "o3*", "o4*", "gpt-*", "*-r1*", "*/deepseek-reasoner*", "*thinking*", "*/qwq*",
        "mock-offload*",
    ]

    # Jobs
    job_retention_days: int = Field(7, ge=1)
    cleanup_batch_size: int = Field(1000, ge=1, le=100_000)
    stuck_job_minutes: int = Field(180, ge=1)
    progress_flush_seconds: float = Field(0.25, ge=0)
    generate_throttle_limit: int = Field(5, ge=1)
    generate_throttle_period_seconds: int = Field(60, ge=1)
    preview_throttle_limit: int = Field(10, ge=1)
    preview_throttle_period_seconds: int = Field(60, ge=1)
    concurrency_per_user: int | None = Field(
        None, ge=1, description="runs of llm-generate and of preview-generate in flight per user (unset: no cap)")

    # Delivery
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout: float = Field(10.0, gt=0)

    # HTTP API
    max_request_bytes: int = Field(1_048_576, ge=1024)
    metrics_token: SecretStr | None = None
    sse_max_seconds: float = Field(240.0, gt=0)
    sse_heartbeat_seconds: float = Field(15.0, gt=0)
    sse_poll_seconds: float = Field(0.2, gt=0)
    sse_max_streams_per_key: int = Field(10, ge=1)
    event_send_timeout: float = Field(5.0, gt=0, description="bound on sending an Inngest event")

    # Inngest SDK variables, read here so start-up can check them; they keep the SDK's meaning.
    inngest_dev: str | None = None
    inngest_event_key: SecretStr | None = None
    inngest_signing_key: SecretStr | None = None
    inngest_signing_key_fallback: SecretStr | None = None
    inngest_base_url: AnyHttpUrl | None = None
    inngest_event_api_base_url: AnyHttpUrl | None = None

    @field_validator("quick_models", "slow_models", "offload_models", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url", "database_listen_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith(("postgres://", "postgresql://")):
            # Hosted providers hand out postgres:// URLs; SQLAlchemy needs the driver named.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("inngest_signing_key", "inngest_signing_key_fallback")
    @classmethod
    def _hex_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        # The SDK hex-decodes the part after "signkey-<env>-"; catch a bad key at start-up, not mid-request.
        if value is not None:
            body = re.sub(r"^signkey-\w+?-", "", value.get_secret_value().strip())
            if not body or re.fullmatch(r"[0-9a-fA-F]+", body) is None:
                raise ValueError("must look like signkey-<env>-<hex> (copy it from the Inngest dashboard)")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET must be set when WEBHOOK_URL is set (webhooks are always signed)")
        return self

    @cached_property
    def inngest_is_dev(self) -> bool:
        """Dev mode exactly as the Inngest SDK decides it: any INNGEST_DEV but '', '0' or 'false'."""
        return self.inngest_dev is not None and self.inngest_dev.strip().lower() not in _FALSY

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's error into one that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        variable = "_".join(str(part) for part in error["loc"] if isinstance(part, str)).upper()
        value = error.get("input")
        shown = "" if value is None or isinstance(value, dict) or "SECRET" in variable or "KEY" in variable \
            else f" (got {value!r})"
        lines.append(f"  {variable or 'settings'}: {error['msg']}{shown}")
    return "\n".join(lines)
