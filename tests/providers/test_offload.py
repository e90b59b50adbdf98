"""Offloaded calls: the adapter and body handed to ``step.ai.infer``, the provider JSON parsed into our
response, and the gateway's final error classified with the same taxonomy as streamed calls."""

from __future__ import annotations

from typing import Any

import inngest
import pytest

from agentic.config import Settings, load_settings
from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.claude import DEFAULT_MAX_TOKENS
from agentic.providers.offload import (
    ANTHROPIC_VERSION,
    gateway_error,
    mock_gateway_key,
    offload_call,
    parse_offloaded,
)

OR_KEY = "sk-or-v1-offload-test-0123"
ANT_KEY = "sk-ant-api03-offload-test"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"openrouter_api_key": OR_KEY, "anthropic_api_key": ANT_KEY,
                              "openrouter_base_url": "https://openrouter.test/api/v1/",
                              "openrouter_referer": "https://app.example", "openrouter_title": "My App",
                              "anthropic_base_url": None, "inngest_signing_key": None}
    return load_settings(**(values | overrides))


def request(**fields: Any) -> LLMRequest:
    return LLMRequest(messages=[Message(role="system", content="be brief"),
                                Message(role="user", content="Prove it.")],
                      model=fields.pop("model", "openai/o3"), **fields)


# --- the call handed to Inngest ---------------------------------------------------------------------------


def test_openrouter_goes_through_the_openai_chat_format_with_attribution() -> None:
    call = offload_call(request(max_tokens=500, temperature=0.2), settings())
    assert (call.format, call.provider) == ("openai-chat", "openrouter")
    assert call.url == "https://openrouter.test/api/v1/chat/completions"
    assert call.adapter.format() == "openai-chat" and call.adapter.auth_key() == OR_KEY
    assert call.adapter.headers() == {"X-Title": "My App", "HTTP-Referer": "https://app.example"}
    assert call.body == {"model": "openai/o3", "messages": [{"role": "system", "content": "be brief"},
                                                            {"role": "user", "content": "Prove it."}],
                         "temperature": 0.2, "max_tokens": 500}  # not streamed: no stream, no stream_options
    assert OR_KEY not in repr(call)


def test_claude_goes_through_the_anthropic_format_with_its_version_header() -> None:
    call = offload_call(request(model="claude-opus-4-1", stop=["END"]), settings(), provider="anthropic")
    assert (call.format, call.provider) == ("anthropic", "anthropic")
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert call.adapter.auth_key() == ANT_KEY
    assert call.adapter.headers() == {"anthropic-version": ANTHROPIC_VERSION}
    assert call.body == {"model": "claude-opus-4-1", "max_tokens": DEFAULT_MAX_TOKENS, "system": "be brief",
                         "messages": [{"role": "user", "content": "Prove it."}], "stop_sequences": ["END"]}
    gateway = offload_call(request(), settings(anthropic_base_url="https://gw.example/anthropic"),
                           provider="anthropic")
    assert gateway.url == "https://gw.example/anthropic/v1/messages"


def test_the_mock_is_called_at_the_apps_own_route_with_a_derived_key() -> None:
    signed = settings(llm_provider="mock", inngest_signing_key="signkey-prod-00aa11bb")
    call = offload_call(request(model="mock-offload-1"), signed, app_origin="https://agentic.example/")
    assert call.url == "https://agentic.example/mock/v1/chat/completions"
    assert call.adapter.auth_key() == mock_gateway_key(signed) != "mock"
    assert mock_gateway_key(settings(inngest_signing_key="signkey-prod-00aa11cc")) != mock_gateway_key(signed)
    assert mock_gateway_key(settings(llm_provider="mock")) == "mock"  # dev mode, no signing key
    with pytest.raises(ValueError, match="app_origin"):
        offload_call(request(), signed)


def test_a_missing_key_is_not_configured() -> None:
    with pytest.raises(LLMError) as caught:
        offload_call(request(), settings(openrouter_api_key="  "))
    assert caught.value.code is ErrorCode.NOT_CONFIGURED and "OPENROUTER_API_KEY" in caught.value.message


def test_infer_fills_the_model_only_when_absent() -> None:
    call = offload_call(request(), settings())
    body = dict(call.body)
    call.adapter.on_call(body)
    assert body["model"] == "openai/o3"


# --- parsing the provider's JSON ----------------------------------------------------------------------------


def test_an_openai_chat_completion_becomes_our_response() -> None:
    data = {"id": "gen-9", "model": "openai/o3-2025", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "QED."}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 900, "total_tokens": 920}}
    response = offload_call(request(), settings()).parse(data, request())
    assert (response.id, response.model, response.content) == ("gen-9", "openai/o3-2025", "QED.")
    assert (response.finish_reason, response.provider) == ("length", "openrouter")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (20, 900)


def test_an_error_inside_a_2xx_openai_body_is_classified() -> None:
    data = {"error": {"code": 402, "message": "Insufficient credits"}}
    with pytest.raises(LLMError) as caught:
        parse_offloaded(data, request(), "openai-chat", provider="openrouter")
    assert caught.value.code is ErrorCode.INSUFFICIENT_CREDITS


def test_a_completion_without_a_finish_reason_is_truncated() -> None:
    data = {"id": "g", "choices": [{"index": 0, "message": {"content": "half"}}]}
    with pytest.raises(LLMError) as caught:
        parse_offloaded(data, request(), "openai-chat")
    assert caught.value.code is ErrorCode.TRUNCATED
    with pytest.raises(LLMError):
        parse_offloaded(["not", "an", "object"], request(), "openai-chat")


def test_an_anthropic_message_becomes_our_response_counting_cached_prompt_tokens() -> None:
    data = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-1",
            "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Done"},
                        {"type": "text", "text": " here."}],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 7,
                      "output_tokens": 42}}
    response = parse_offloaded(data, request(), "anthropic")
    assert response.content == "Done here." and response.finish_reason == "length"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (22, 42)
    assert (response.id, response.provider) == ("msg_1", "anthropic")


def test_an_anthropic_error_body_is_classified_by_its_type() -> None:
    data = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(LLMError) as caught:
        parse_offloaded(data, request(), "anthropic")
    assert caught.value.code is ErrorCode.OVERLOADED and caught.value.status == 529


# --- the gateway's final error ------------------------------------------------------------------------------


def step_error(status: int | None, body: str, name: str = "AIGatewayError") -> inngest.StepError:
    """What the SDK raises, as built from the server's memoised error (see tests/functions/executor.py)."""
    message = ("Error making AI request: " + (f"unsuccessful status code: {status}" if status is not None
                                               else 'Post "https://x": dial tcp: connection refused'))
    return inngest.StepError(message=message, name=name, stack=body)


@pytest.mark.parametrize(("status", "body", "code"), [
    (401, '{"error":{"code":401,"message":"No auth credentials found"}}', ErrorCode.AUTHENTICATION),
    (429, '{"error":{"code":429,"message":"Rate limit exceeded"}}', ErrorCode.RATE_LIMITED),
    (402, '{"error":{"code":402,"message":"Insufficient credits"}}', ErrorCode.INSUFFICIENT_CREDITS),
    (400, '{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}',
     ErrorCode.CONTEXT_TOO_LONG),
    (404, '{"error":{"message":"No endpoints found for x/y"}}', ErrorCode.MODEL_NOT_FOUND),
    (503, "<html>Service Unavailable</html>", ErrorCode.UPSTREAM_ERROR),
    (529, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', ErrorCode.OVERLOADED),
])
def test_statuses_map_to_the_taxonomy(status: int, body: str, code: ErrorCode) -> None:
    error = gateway_error(step_error(status, body), provider="openrouter")
    assert error.code is code and error.status == status and error.provider == "openrouter"


def test_the_providers_message_is_kept_and_scrubbed_of_the_key() -> None:
    body = f'{{"error":{{"code":401,"message":"Invalid key {OR_KEY}","metadata":{{"raw":"bad key"}}}}}}'
    call = offload_call(request(), settings())
    error = call.error(step_error(401, body))
    assert "Invalid key" in error.message and "bad key" in error.message and OR_KEY not in error.message
    assert error.retry_after is None  # the server keeps no headers


def test_no_status_is_a_network_error_and_another_steps_error_is_internal() -> None:
    network = gateway_error(step_error(None, '{"error":"Error making AI request"}'), provider="anthropic")
    assert network.code is ErrorCode.NETWORK_ERROR and network.status is None
    other = gateway_error(step_error(500, "boom", name="ValueError"), provider="anthropic")
    assert other.code is ErrorCode.INTERNAL and "ValueError" in other.message
