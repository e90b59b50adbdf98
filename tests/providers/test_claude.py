"""ClaudeRepository through the real Anthropic SDK (2.x, httpx2) against a loopback stand-in for the Messages API.

respx cannot reach httpx2, so the network edge is a real socket: ``tests/providers/anthropic_server.py``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.claude import DEFAULT_MAX_TOKENS, SAMPLING_API_VERSION, ClaudeRepository
from tests.providers.anthropic_server import (
    MODEL,
    AnthropicStandIn,
    api_error,
    error_event,
    events_for,
    hang,
    message,
    message_delta,
    message_start,
    raw,
    sse,
    stream,
    text_delta,
)

KEY = "sk-ant-api03-0123456789abcdefSECRET"


def request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {"model": MODEL, "messages": [
        Message(role="system", content="be brief"), Message(role="system", content="be kind"),
        Message(role="user", content="hi"), Message(role="assistant", content="hello"),
        Message(role="user", content="how are you?")]}
    return LLMRequest(**(fields | overrides))


def claude(base_url: str, *, read_timeout: float = 2.0) -> ClaudeRepository:
    return ClaudeRepository(KEY, base_url=base_url, connect_timeout=1.0, read_timeout=read_timeout)


@pytest.fixture
def repo(anthropic_server: AnthropicStandIn) -> Iterator[ClaudeRepository]:
    repository = claude(anthropic_server.base_url)
    yield repository
    repository.close()


def failure(repo: ClaudeRepository, **kwargs: Any) -> LLMError:
    with pytest.raises(LLMError) as caught:
        repo.generate(request(), **kwargs)
    error = caught.value
    assert KEY not in error.message and KEY not in repr(error) and KEY not in str(error.to_dict())
    assert error.provider == "anthropic"
    return error


# --- success ----------------------------------------------------------------------------------------------


def test_streamed_success(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("Hel", "lo, ", "wörld"))
    deltas: list[str] = []
    response = repo.generate(request(), on_delta=deltas.append)
    assert response.content == "Hello, wörld" == "".join(deltas)
    assert (response.id, response.model, response.provider) == ("msg_01XYZ", MODEL, "anthropic")
    assert response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) \
        == (30, 15, 45)  # cached input tokens count as prompt tokens
    assert anthropic_server.last.events_sent == 9  # the whole stream, ping included, was read


def test_request_body_and_headers(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("ok"))
    repo.generate(request(temperature=0.3, top_p=0.9, stop=["END"], frequency_penalty=0.5))
    sent = anthropic_server.last
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # SDK 2.x sends the key as a bearer token
    assert "x-api-key" not in sent.headers
    assert sent.headers["x-stainless-retry-count"] == "0"
    # SDK 2.x has no sampling parameters; they go out as before, on the last API version that accepts them.
    assert sent.headers["anthropic-version"] == SAMPLING_API_VERSION
    assert sent.json == {
        "model": MODEL, "stream": True, "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "be brief\n\nbe kind",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                     {"role": "user", "content": "how are you?"}],
        "temperature": 0.3, "top_p": 0.9, "stop_sequences": ["END"],
    }  # frequency_penalty has no Anthropic equivalent and is not sent
    assert not any(name.startswith("traceparent") for name in sent.headers)  # no OpenTelemetry propagation


def test_optional_fields_are_left_out(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("ok"))
    repo.generate(LLMRequest(model=MODEL, messages=[Message(role="user", content="hi")], max_tokens=77))
    sent = anthropic_server.last
    assert sent.json == {"model": MODEL, "stream": True, "max_tokens": 77,
                         "messages": [{"role": "user", "content": "hi"}]}
    assert sent.headers["anthropic-version"] != SAMPLING_API_VERSION  # the SDK's own version


def test_one_sampling_parameter_alone(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("ok"))
    repo.generate(LLMRequest(model=MODEL, messages=[Message(role="user", content="hi")], temperature=0.0))
    sent = anthropic_server.last
    assert (sent.json["temperature"], "top_p" in sent.json) == (0.0, False)
    assert sent.headers["anthropic-version"] == SAMPLING_API_VERSION


def test_the_client_is_reused(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(message("one"), message("two"))
    assert [repo.generate(request()).content for _ in range(2)] == ["one", "two"]
    assert len(anthropic_server.requests) == 2


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    ("brand_new_reason", "stop"),
])
def test_stop_reason_mapping(repo: ClaudeRepository, anthropic_server: AnthropicStandIn, stop_reason: str,
                             finish: str) -> None:
    anthropic_server.reply(message("x", stop_reason=stop_reason))
    assert repo.generate(request()).finish_reason == finish


def test_thinking_deltas_are_not_content(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    thinking = sse("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"})
    anthropic_server.reply(stream(message_start(), thinking, text_delta("answer", 1), message_delta(),
                                  sse("message_stop")))
    assert repo.generate(request()).content == "answer"


def test_cumulative_input_tokens_in_message_delta_win(repo: ClaudeRepository,
                                                      anthropic_server: AnthropicStandIn) -> None:
    final = message_delta("end_turn", 9, input_tokens=40, cache_read_input_tokens=2)
    anthropic_server.reply(stream(message_start(), text_delta("x"), final, sse("message_stop")))
    usage = repo.generate(request()).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (42, 9)


# --- HTTP errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_type", "message", "code", "retriable"), [
    (400, "invalid_request_error", "messages: roles must alternate", ErrorCode.BAD_REQUEST, False),
    (400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum",
     ErrorCode.CONTEXT_TOO_LONG, False),
    (401, "authentication_error", "invalid x-api-key", ErrorCode.AUTHENTICATION, False),
    (402, "billing_error", "payment required", ErrorCode.INSUFFICIENT_CREDITS, False),
    (403, "permission_error", "not allowed", ErrorCode.AUTHENTICATION, False),
    (404, "not_found_error", "model: nope", ErrorCode.MODEL_NOT_FOUND, False),
    (408, "timeout_error", "timed out", ErrorCode.TIMEOUT, True),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes",
     ErrorCode.CONTEXT_TOO_LONG, False),
    (429, "rate_limit_error", "This request would exceed the rate limit for your organization",
     ErrorCode.RATE_LIMITED, True),
    (429, "rate_limit_error", "You have reached your specified API usage limits. You will regain access on "
     "2025-07-01 at 00:00 UTC.", ErrorCode.SPEND_LIMIT, False),
    (500, "api_error", "Internal server error", ErrorCode.UPSTREAM_ERROR, True),
    (502, "api_error", "bad gateway", ErrorCode.UPSTREAM_ERROR, True),
    (503, "api_error", "unavailable", ErrorCode.UPSTREAM_ERROR, True),
    (504, "timeout_error", "gateway timeout", ErrorCode.UPSTREAM_ERROR, True),
    (529, "overloaded_error", "Overloaded", ErrorCode.OVERLOADED, True),
])
def test_http_status_mapping(repo: ClaudeRepository, anthropic_server: AnthropicStandIn, status: int,
                             error_type: str, message: str, code: ErrorCode, retriable: bool) -> None:
    anthropic_server.reply(api_error(status, error_type, message))
    error = failure(repo)
    assert (error.code, error.retriable, error.status) == (code, retriable, status)
    assert error.message == message  # the provider's words, not the SDK's "Error code: …" wrapper
    assert len(anthropic_server.requests) == 1  # the SDK never retries by itself


def _rfc3339(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("headers", "expected"), [
    (lambda: {"retry-after": "9"}, 9.0),
    (lambda: {"retry-after": format_datetime(datetime.now(UTC) + timedelta(seconds=45), usegmt=True)}, 45.0),
    (lambda: {"anthropic-ratelimit-requests-remaining": "0",
              "anthropic-ratelimit-requests-reset": _rfc3339(20),
              "anthropic-ratelimit-tokens-remaining": "90000",
              "anthropic-ratelimit-tokens-reset": _rfc3339(3)}, 20.0),
    (lambda: {"anthropic-ratelimit-requests-reset": _rfc3339(20),
              "anthropic-ratelimit-tokens-reset": _rfc3339(6)}, 6.0),
    (dict, None),
])
def test_rate_limit_retry_after(repo: ClaudeRepository, anthropic_server: AnthropicStandIn,
                                headers: Callable[[], dict[str, str]], expected: float | None) -> None:
    anthropic_server.reply(api_error(429, "rate_limit_error", "slow down", headers()))
    error = failure(repo)
    assert error.code is ErrorCode.RATE_LIMITED
    assert error.retry_after == (None if expected is None else pytest.approx(expected, abs=2))
    assert len(anthropic_server.requests) == 1  # retry-after is ours to honour, not the SDK's


def test_overloaded_529_keeps_retry_after(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(api_error(529, "overloaded_error", "Overloaded", {"retry-after": "4"}))
    error = failure(repo)
    assert (error.code, error.retriable, error.retry_after) == (ErrorCode.OVERLOADED, True, 4.0)
    assert len(anthropic_server.requests) == 1


def test_no_retry_on_500(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(api_error(500, "api_error", "boom"), message("never sent"))
    assert failure(repo).code is ErrorCode.UPSTREAM_ERROR
    assert len(anthropic_server.requests) == 1


def test_should_retry_header_does_not_make_the_sdk_retry(repo: ClaudeRepository,
                                                         anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(api_error(409, "api_error", "conflict", {"x-should-retry": "true"}),
                           message("never sent"))
    failure(repo)
    assert len(anthropic_server.requests) == 1


def test_non_json_error_body(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(raw(502, "<html>Bad Gateway</html>"))
    error = failure(repo)
    assert (error.code, error.status) == (ErrorCode.UPSTREAM_ERROR, 502)


def test_echoed_key_never_reaches_the_error(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(api_error(401, "authentication_error", f"invalid x-api-key {KEY}"))
    assert failure(repo).code is ErrorCode.AUTHENTICATION  # failure() checks the key is absent


def test_the_key_is_in_no_log_record(repo: ClaudeRepository, anthropic_server: AnthropicStandIn,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """The SDK, httpx2 and httpcore2 log requests and responses at DEBUG: none of it carries the key."""
    anthropic_server.reply(message("ok"), api_error(401, "authentication_error", f"invalid x-api-key {KEY}"))
    with caplog.at_level(logging.DEBUG):
        repo.generate(request(temperature=0.5))
        failure(repo)
    assert any(record.name.startswith("anthropic") for record in caplog.records)  # the SDK did log
    assert not [record.name for record in caplog.records if KEY in record.getMessage()]


# --- failures inside a 200 stream -------------------------------------------------------------------------


@pytest.mark.parametrize(("error_type", "code", "retriable"), [
    ("overloaded_error", ErrorCode.OVERLOADED, True),
    ("rate_limit_error", ErrorCode.RATE_LIMITED, True),
    ("api_error", ErrorCode.UPSTREAM_ERROR, True),
    ("invalid_request_error", ErrorCode.BAD_REQUEST, False),
    ("authentication_error", ErrorCode.AUTHENTICATION, False),
    ("permission_error", ErrorCode.AUTHENTICATION, False),
    ("not_found_error", ErrorCode.MODEL_NOT_FOUND, False),
    ("request_too_large", ErrorCode.CONTEXT_TOO_LONG, False),
    ("billing_error", ErrorCode.INSUFFICIENT_CREDITS, False),
    ("mystery_error", ErrorCode.STREAM_ERROR, True),
])
def test_error_event_inside_the_stream(repo: ClaudeRepository, anthropic_server: AnthropicStandIn,
                                       error_type: str, code: ErrorCode, retriable: bool) -> None:
    anthropic_server.reply(stream(message_start(), text_delta("partial"), error_event(error_type, "It went wrong"),
                                  headers={"retry-after": "30"}))
    error = failure(repo)
    assert (error.code, error.retriable, error.message) == (code, retriable, "It went wrong")
    assert error.retry_after is None  # the 200's headers describe the request that started, not this failure


def test_stream_cut_mid_way(repo: ClaudeRepository, anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(stream(*events_for("a", "b", "c"), cut_after=4))
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.NETWORK_ERROR, True)
    assert anthropic_server.last.events_sent == 4


def test_stream_without_message_stop_is_truncated(repo: ClaudeRepository,
                                                  anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(stream(*events_for("a", "b")[:-1]))  # a clean end of body, but no message_stop
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.TRUNCATED, True)


# --- transport failures -----------------------------------------------------------------------------------


def test_connection_refused(anthropic_server: AnthropicStandIn) -> None:
    repo = claude(anthropic_server.refusing_url())
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.NETWORK_ERROR, True)


def test_connect_timeout(anthropic_server: AnthropicStandIn) -> None:
    repo = claude(anthropic_server.blackhole_url())
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.TIMEOUT, True)


def test_read_timeout_before_headers(anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(hang(), message("never sent"))
    repo = claude(anthropic_server.base_url, read_timeout=0.5)
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.TIMEOUT, True)
    assert len(anthropic_server.requests) == 1  # not retried by the SDK
    assert anthropic_server.last.wait_disconnected()  # and the connection was given up


def test_read_timeout_mid_stream(anthropic_server: AnthropicStandIn) -> None:
    anthropic_server.reply(stream(*events_for("a", "b"), hold_after=3))
    repo = claude(anthropic_server.base_url, read_timeout=0.5)
    assert failure(repo).code is ErrorCode.TIMEOUT
    assert anthropic_server.last.wait_disconnected()


# --- cancellation -----------------------------------------------------------------------------------------


def test_cancel_mid_stream_closes_the_connection(repo: ClaudeRepository,
                                                 anthropic_server: AnthropicStandIn) -> None:
    events = events_for(*[f"t{i} " for i in range(50)])
    # message_start, content_block_start, ping, t0..t3: cancelling after the third delta needs one more event.
    anthropic_server.reply(stream(*events, hold_after=7))
    deltas: list[str] = []
    response = repo.generate(request(), on_delta=deltas.append, should_cancel=lambda: len(deltas) >= 3)
    assert response.finish_reason == "cancelled"
    assert response.content == "t0 t1 t2 " == "".join(deltas)
    assert (response.id, response.usage.prompt_tokens) == ("msg_01XYZ", 30)
    exchange = anthropic_server.last
    assert exchange.events_sent == 7  # the server held the rest back ...
    assert exchange.wait_disconnected()  # ... and the client hung up instead of waiting for it


# --- cold start -------------------------------------------------------------------------------------------


def test_building_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from agentic.config import Settings\n"
        "from agentic.providers.factory import build_llm_repository\n"
        "config = Settings(llm_provider='anthropic', anthropic_api_key='k', _env_file=None)\n"
        "repo = build_llm_repository(config)\n"
        "assert repo.name == 'anthropic'\n"
        "loaded = [m for m in ('anthropic', 'httpx2', 'opentelemetry') if m in sys.modules]\n"
        "assert not loaded, f'imported eagerly: {loaded}'\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(src)}, cwd=src, check=False)
    assert result.returncode == 0, result.stderr
