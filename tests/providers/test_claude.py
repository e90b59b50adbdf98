"""ClaudeRepository through the real Anthropic SDK, with only the network edge mocked (respx)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.claude import DEFAULT_MAX_TOKENS, ClaudeRepository
from tests.providers.streams import Body

BASE = "https://anthropic.test"
KEY = "sk-ant-api03-0123456789abcdefSECRET"
MODEL = "claude-haiku-4-5-20251001"


def event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def message_start(input_tokens: int = 25, cache_read: int = 5) -> bytes:
    return event("message_start", message={
        "id": "msg_01XYZ", "type": "message", "role": "assistant", "content": [], "model": MODEL,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": cache_read, "output_tokens": 1}})


def text_delta(text: str, index: int = 0) -> bytes:
    return event("content_block_delta", index=index, delta={"type": "text_delta", "text": text})


def message_delta(stop_reason: str = "end_turn", output_tokens: int = 15) -> bytes:
    return event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None},
                 usage={"output_tokens": output_tokens})


def happy(*texts: str, stop_reason: str = "end_turn") -> list[bytes]:
    block = {"type": "text", "text": ""}
    return [message_start(), event("content_block_start", index=0, content_block=block), event("ping"),
            *[text_delta(t) for t in texts], event("content_block_stop", index=0),
            message_delta(stop_reason), event("message_stop")]


def request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {"model": MODEL, "messages": [
        Message(role="system", content="be brief"), Message(role="system", content="be kind"),
        Message(role="user", content="hi"), Message(role="assistant", content="hello"),
        Message(role="user", content="how are you?")]}
    return LLMRequest(**(fields | overrides))


@pytest.fixture
def repo() -> Iterator[ClaudeRepository]:
    repository = ClaudeRepository(KEY, base_url=BASE, connect_timeout=1.0, read_timeout=2.0)
    yield repository
    repository.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def stream_response(body: httpx.SyncByteStream | list[bytes]) -> httpx.Response:
    stream = body if isinstance(body, httpx.SyncByteStream) else Body(body)
    return httpx.Response(200, headers={"content-type": "text/event-stream", "request-id": "req_1"},
                          stream=stream)


def api_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None
              ) -> httpx.Response:
    return httpx.Response(status, headers=headers or {},
                          json={"type": "error", "error": {"type": error_type, "message": message}})


def failure(repo: ClaudeRepository, **kwargs: Any) -> LLMError:
    with pytest.raises(LLMError) as caught:
        repo.generate(request(), **kwargs)
    error = caught.value
    assert KEY not in error.message and KEY not in repr(error) and KEY not in str(error.to_dict())
    assert error.provider == "anthropic"
    return error


# --- success ----------------------------------------------------------------------------------------------


def test_streamed_success(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    router.post("/v1/messages").mock(return_value=stream_response(happy("Hel", "lo, ", "wörld")))
    deltas: list[str] = []
    response = repo.generate(request(), on_delta=deltas.append)
    assert response.content == "Hello, wörld" == "".join(deltas)
    assert (response.id, response.model, response.provider) == ("msg_01XYZ", MODEL, "anthropic")
    assert response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) \
        == (30, 15, 45)  # cached input tokens count as prompt tokens


def test_request_body_and_headers(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    route = router.post("/v1/messages").mock(return_value=stream_response(happy("ok")))
    repo.generate(request(temperature=0.3, top_p=0.9, stop=["END"], frequency_penalty=0.5))
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == KEY
    assert "anthropic-version" in sent.headers
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "model": MODEL, "stream": True, "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "be brief\n\nbe kind",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                     {"role": "user", "content": "how are you?"}],
        "temperature": 0.3, "top_p": 0.9, "stop_sequences": ["END"],
    }  # frequency_penalty has no Anthropic equivalent and is not sent


def test_optional_fields_are_left_out(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    route = router.post("/v1/messages").mock(return_value=stream_response(happy("ok")))
    repo.generate(LLMRequest(model=MODEL, messages=[Message(role="user", content="hi")], max_tokens=77))
    assert json.loads(route.calls.last.request.content) == {
        "model": MODEL, "stream": True, "max_tokens": 77, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("brand_new_reason", "stop"),
])
def test_stop_reason_mapping(repo: ClaudeRepository, router: respx.MockRouter, stop_reason: str,
                             finish: str) -> None:
    router.post("/v1/messages").mock(return_value=stream_response(happy("x", stop_reason=stop_reason)))
    assert repo.generate(request()).finish_reason == finish


def test_thinking_deltas_are_not_content(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    thinking = event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hmm"})
    chunks = [message_start(), thinking, text_delta("answer", 1), message_delta(), event("message_stop")]
    router.post("/v1/messages").mock(return_value=stream_response(chunks))
    assert repo.generate(request()).content == "answer"


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
def test_http_status_mapping(repo: ClaudeRepository, router: respx.MockRouter, status: int,
                             error_type: str, message: str, code: ErrorCode, retriable: bool) -> None:
    route = router.post("/v1/messages").mock(return_value=api_error(status, error_type, message))
    error = failure(repo)
    assert (error.code, error.retriable, error.status) == (code, retriable, status)
    assert error.message == message  # the provider's words, not the SDK's "Error code: …" wrapper
    assert route.call_count == 1  # the SDK never retries by itself


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
def test_rate_limit_retry_after(repo: ClaudeRepository, router: respx.MockRouter,
                                headers: Callable[[], dict[str, str]], expected: float | None) -> None:
    router.post("/v1/messages").mock(return_value=api_error(429, "rate_limit_error", "slow down", headers()))
    error = failure(repo)
    assert error.code is ErrorCode.RATE_LIMITED
    assert error.retry_after == (None if expected is None else pytest.approx(expected, abs=2))


def test_overloaded_529_keeps_retry_after(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    route = router.post("/v1/messages").mock(
        return_value=api_error(529, "overloaded_error", "Overloaded", {"retry-after": "4"}))
    error = failure(repo)
    assert (error.code, error.retriable, error.retry_after) == (ErrorCode.OVERLOADED, True, 4.0)
    assert route.call_count == 1


def test_no_retry_on_500(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    route = router.post("/v1/messages").mock(return_value=api_error(500, "api_error", "boom"))
    assert failure(repo).code is ErrorCode.UPSTREAM_ERROR
    assert route.call_count == 1


def test_non_json_error_body(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    router.post("/v1/messages").mock(return_value=httpx.Response(502, text="<html>Bad Gateway</html>"))
    error = failure(repo)
    assert (error.code, error.status) == (ErrorCode.UPSTREAM_ERROR, 502)


def test_echoed_key_never_reaches_the_error(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    router.post("/v1/messages").mock(
        return_value=api_error(401, "authentication_error", f"invalid x-api-key {KEY}"))
    assert failure(repo).code is ErrorCode.AUTHENTICATION  # failure() checks the key is absent


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
def test_error_event_inside_the_stream(repo: ClaudeRepository, router: respx.MockRouter, error_type: str,
                                       code: ErrorCode, retriable: bool) -> None:
    error_event = (b'event: error\ndata: {"type": "error", "error": {"type": "' + error_type.encode()
                   + b'", "message": "It went wrong"}}\n\n')
    router.post("/v1/messages").mock(return_value=stream_response(
        [message_start(), text_delta("partial"), error_event]))
    error = failure(repo)
    assert (error.code, error.retriable, error.message) == (code, retriable, "It went wrong")


def test_stream_cut_mid_way(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    router.post("/v1/messages").mock(return_value=stream_response(Body(happy("a", "b", "c"), fail_after=4)))
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.NETWORK_ERROR, True)


def test_stream_without_message_stop_is_truncated(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    router.post("/v1/messages").mock(return_value=stream_response(happy("a", "b")[:-1]))
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.TRUNCATED, True)


@pytest.mark.parametrize(("exc", "code"), [
    (httpx.ReadTimeout("read timed out"), ErrorCode.TIMEOUT),
    (httpx.ConnectTimeout("connect timed out"), ErrorCode.TIMEOUT),
    (httpx.ConnectError("name resolution failed"), ErrorCode.NETWORK_ERROR),
])
def test_transport_failures(repo: ClaudeRepository, router: respx.MockRouter, exc: Exception,
                            code: ErrorCode) -> None:
    route = router.post("/v1/messages").mock(side_effect=exc)
    error = failure(repo)
    assert (error.code, error.retriable) == (code, True)
    assert route.call_count == 1


def test_read_timeout_mid_stream(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    body = Body(happy("a", "b"), fail_after=3, error=httpx.ReadTimeout("no chunk within the read timeout"))
    router.post("/v1/messages").mock(return_value=stream_response(body))
    assert failure(repo).code is ErrorCode.TIMEOUT


# --- cancellation -----------------------------------------------------------------------------------------


def test_cancel_mid_stream_closes_the_connection(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    chunks = happy(*[f"t{i} " for i in range(50)])
    body = Body(chunks)
    router.post("/v1/messages").mock(return_value=stream_response(body))
    deltas: list[str] = []
    started = time.monotonic()
    response = repo.generate(request(), on_delta=deltas.append, should_cancel=lambda: len(deltas) >= 3)
    assert response.finish_reason == "cancelled"
    assert response.content == "t0 t1 t2 " == "".join(deltas)
    assert (response.id, response.usage.prompt_tokens) == ("msg_01XYZ", 30)
    assert body.sent < len(chunks) // 2  # stopped reading at once ...
    assert body.closed  # ... and released the connection
    assert time.monotonic() - started < 2


# --- cold start -------------------------------------------------------------------------------------------


def test_building_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from agentic.config import Settings\n"
        "from agentic.providers.factory import build_llm_repository\n"
        "config = Settings(llm_provider='anthropic', anthropic_api_key='k', _env_file=None)\n"
        "repo = build_llm_repository(config)\n"
        "assert repo.name == 'anthropic'\n"
        "assert 'anthropic' not in sys.modules, 'the SDK was imported eagerly'\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(src)}, cwd=src, check=False)
    assert result.returncode == 0, result.stderr


def test_cumulative_input_tokens_in_message_delta_win(repo: ClaudeRepository, router: respx.MockRouter) -> None:
    final = event("message_delta", delta={"stop_reason": "end_turn"},
                  usage={"input_tokens": 40, "cache_read_input_tokens": 2, "output_tokens": 9})
    chunks = [message_start(), text_delta("x"), final, event("message_stop")]
    router.post("/v1/messages").mock(return_value=stream_response(chunks))
    usage = repo.generate(request()).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (42, 9)
