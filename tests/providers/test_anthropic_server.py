"""The stand-in itself, through the real SDK: its non-streaming mode (offloaded calls) answers the JSON Message."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.providers.anthropic_server import MODEL, AnthropicStandIn, api_error, message


@pytest.fixture
def client(anthropic_server: AnthropicStandIn) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="sk-ant-test", base_url=anthropic_server.base_url, max_retries=0) as sdk:
        yield sdk


def test_a_non_streaming_request_gets_the_json_message(client: anthropic.Anthropic,
                                                        anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("Hel", "lo", stop_reason="max_tokens", input_tokens=7, cache_read=2,
                                   output_tokens=3))
    reply = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert [block.text for block in reply.content if block.type == "text"] == ["Hello"]
    assert (reply.id, reply.model, reply.stop_reason) == ("msg_01XYZ", MODEL, "max_tokens")
    assert (reply.usage.input_tokens, reply.usage.cache_read_input_tokens, reply.usage.output_tokens) == (7, 2, 3)
    assert "stream" not in anthropic_server.last.json


def test_errors_carry_the_headers_the_sdk_reads(client: anthropic.Anthropic,
                                                anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(api_error(429, "rate_limit_error", "slow down", {"retry-after": "3"}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert (error.request_id, error.type, error.api_message) == ("req_stand_in", "rate_limit_error", "slow down")
    assert error.response.headers["retry-after"] == "3"


def test_a_request_with_nothing_scripted_fails_loudly(client: anthropic.Anthropic,
                                                      anthropic_server: AnthropicStandIn) -> None:
    with pytest.raises(anthropic.InternalServerError, match="no reply scripted for POST /v1/messages"):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
