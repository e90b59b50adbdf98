"""Build the configured provider. A missing key is reported as ``not_configured``, naming the variable.

Building a repository never touches the network or imports a provider SDK, so doing it at start-up is cheap.
"""

from __future__ import annotations

from pydantic import SecretStr

from agentic.config import Settings
from agentic.domain.errors import ErrorCode, LLMError
from agentic.providers.base import LLMProvider
from agentic.providers.claude import ClaudeRepository
from agentic.providers.mock import MockLLMRepository
from agentic.providers.openrouter import OpenRouterRepository

#: The environment variable each provider needs, or None when it needs nothing.
REQUIRED_KEYS: dict[str, str | None] = {
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "mock": None,
}


def build_llm_repository(settings: Settings, *, provider: str | None = None) -> LLMProvider:
    """The repository for ``provider`` (default: ``LLM_PROVIDER``). Raises LLMError(not_configured)."""
    name = provider or settings.llm_provider
    if name == "mock":
        return MockLLMRepository(latency_ms=settings.mock_latency_ms,
                                 tokens_per_second=settings.mock_tokens_per_second)
    if name == "openrouter":
        return OpenRouterRepository(
            _require(settings.openrouter_api_key, name),
            base_url=str(settings.openrouter_base_url), referer=settings.openrouter_referer,
            title=settings.openrouter_title, connect_timeout=settings.provider_connect_timeout,
            read_timeout=settings.provider_read_timeout,
        )
    if name == "anthropic":
        base_url = settings.anthropic_base_url
        return ClaudeRepository(
            _require(settings.anthropic_api_key, name),
            base_url=str(base_url) if base_url is not None else None,
            connect_timeout=settings.provider_connect_timeout, read_timeout=settings.provider_read_timeout,
        )
    raise LLMError(ErrorCode.NOT_CONFIGURED, f"unknown LLM provider {name!r}", provider=name)


def provider_configured(settings: Settings, *, provider: str | None = None) -> tuple[bool, str | None]:
    """``(True, None)`` when the provider can be built, else ``(False, <missing variable>)``."""
    name = provider or settings.llm_provider
    if name not in REQUIRED_KEYS:
        return False, "LLM_PROVIDER"
    variable = REQUIRED_KEYS[name]
    if variable is None or _present(getattr(settings, variable.lower())):
        return True, None
    return False, variable


def _require(key: SecretStr | None, provider: str) -> str:
    secret = _secret(key)
    if not secret:
        raise LLMError(ErrorCode.NOT_CONFIGURED, f"{REQUIRED_KEYS[provider]} is not set", provider=provider)
    return secret


def _present(key: SecretStr | None) -> bool:
    return bool(_secret(key))


def _secret(key: SecretStr | None) -> str:
    """The key, stripped; one of only whitespace (a common ``.env`` slip) counts as unset."""
    return key.get_secret_value().strip() if key is not None else ""
