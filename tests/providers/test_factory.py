"""Choosing and wiring the provider from settings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from agentic.config import Settings
from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.claude import ClaudeRepository
from agentic.providers.factory import build_llm_repository, provider_configured
from agentic.providers.mock import MockLLMRepository
from agentic.providers.openrouter import OpenRouterRepository
from tests.providers.anthropic_server import AnthropicStandIn, message

OR_KEY = "sk-or-v1-factorytestkey"
ANT_KEY = "sk-ant-api03-factorytestkey"


def settings(**overrides: Any) -> Settings:
    fields: dict[str, Any] = {"openrouter_api_key": None, "anthropic_api_key": None,
                              "anthropic_base_url": None}
    return Settings(_env_file=None, **(fields | overrides))


REQUEST = LLMRequest(model="some/model", messages=[Message(role="user", content="hi")])


def test_mock_provider_uses_mock_settings() -> None:
    repo = build_llm_repository(settings(llm_provider="mock", mock_latency_ms=5, mock_tokens_per_second=50.0))
    assert isinstance(repo, MockLLMRepository)
    assert (repo.name, repo.latency_ms, repo.tokens_per_second) == ("mock", 5, 50.0)


@pytest.mark.parametrize(("provider", "variable"), [("openrouter", "OPENROUTER_API_KEY"),
                                                    ("anthropic", "ANTHROPIC_API_KEY")])
@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_key_is_not_configured(provider: str, variable: str, key: str | None) -> None:
    config = settings(llm_provider=provider, **{variable.lower(): key})
    with pytest.raises(LLMError) as caught:
        build_llm_repository(config)
    error = caught.value
    assert (error.code, error.message, error.provider, error.retriable) == (
        ErrorCode.NOT_CONFIGURED, f"{variable} is not set", provider, False)
    assert provider_configured(config) == (False, variable)


def test_provider_argument_overrides_the_setting() -> None:
    config = settings(llm_provider="mock", anthropic_api_key=ANT_KEY)
    assert isinstance(build_llm_repository(config, provider="anthropic"), ClaudeRepository)
    assert provider_configured(config, provider="openrouter") == (False, "OPENROUTER_API_KEY")


def test_unknown_provider() -> None:
    with pytest.raises(LLMError) as caught:
        build_llm_repository(settings(), provider="nonsense")
    assert caught.value.code is ErrorCode.NOT_CONFIGURED
    assert provider_configured(settings(), provider="nonsense") == (False, "LLM_PROVIDER")


@pytest.mark.parametrize("provider", ["mock", "openrouter", "anthropic"])
def test_configured_when_keys_are_present(provider: str) -> None:
    config = settings(llm_provider=provider, openrouter_api_key=OR_KEY, anthropic_api_key=ANT_KEY)
    assert provider_configured(config) == (True, None)
    assert build_llm_repository(config).name == provider


def test_repositories_do_not_show_their_key() -> None:
    config = settings(openrouter_api_key=OR_KEY, anthropic_api_key=ANT_KEY)
    for provider in ("openrouter", "anthropic"):
        assert "factorytestkey" not in repr(build_llm_repository(config, provider=provider))


def _finished_stream() -> httpx.Response:
    body = (b'data: {"id":"g","model":"m","choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n")
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def test_openrouter_is_wired_from_settings() -> None:
    config = settings(llm_provider="openrouter", openrouter_api_key=f"  {OR_KEY}\n",
                      openrouter_base_url="https://or.test/api/v1", openrouter_referer="https://me.test",
                      openrouter_title="me")
    repo = build_llm_repository(config)
    assert isinstance(repo, OpenRouterRepository)
    with respx.mock(base_url="https://or.test/api/v1") as router:
        route = router.post("/chat/completions").mock(return_value=_finished_stream())
        assert repo.generate(REQUEST).content == "ok"
    sent = route.calls.last.request
    assert (sent.headers["authorization"], sent.headers["http-referer"], sent.headers["x-title"]) == (
        f"Bearer {OR_KEY}", "https://me.test", "me")


def test_anthropic_is_wired_from_settings(anthropic_server: AnthropicStandIn) -> None:
    config = settings(llm_provider="anthropic", anthropic_api_key=f"  {ANT_KEY}\n",
                      anthropic_base_url=f"{anthropic_server.base_url}/gateway/anthropic",
                      provider_read_timeout=7.5)
    repo = build_llm_repository(config)
    anthropic_server.reply(message("ok", model="claude-x"))
    try:
        assert repo.generate(REQUEST).content == "ok"
    finally:
        repo.close()
    sent = anthropic_server.last
    assert sent.path == "/gateway/anthropic/v1/messages"  # the gateway's path prefix is kept
    assert sent.headers["authorization"] == f"Bearer {ANT_KEY}"  # the key, trimmed
    assert sent.headers["x-stainless-read-timeout"] == "7.5"


def test_openrouter_without_referer_sends_no_referer_header() -> None:
    repo = build_llm_repository(settings(llm_provider="openrouter", openrouter_api_key=OR_KEY,
                                         openrouter_referer=None, openrouter_base_url="https://or.test/api/v1"))
    with respx.mock(base_url="https://or.test/api/v1") as router:
        route = router.post("/chat/completions").mock(return_value=_finished_stream())
        repo.generate(REQUEST)
    assert "http-referer" not in route.calls.last.request.headers
