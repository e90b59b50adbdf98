"""OpenRouterRepository against a mocked network edge (respx): streaming, errors, cancellation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.openrouter import OpenRouterRepository
from tests.providers.streams import Body

BASE = "https://openrouter.test/api/v1"
KEY = "sk-or-v1-0123456789abcdefSECRET"


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "gen-123", "model": "openai/gpt-4o-mini-2024", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


USAGE = {"id": "gen-123", "model": "openai/gpt-4o-mini-2024", "choices": [],
         "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, "cost": 0.0001}}


def sse(*items: dict[str, Any] | str) -> list[bytes]:
    """One network chunk per item; strings are sent verbatim (comments, [DONE])."""
    return [(item if isinstance(item, str) else f"data: {json.dumps(item)}\n\n").encode() for item in items]


def rechunk(chunks: list[bytes], size: int) -> list[bytes]:
    raw = b"".join(chunks)
    return [raw[i:i + size] for i in range(0, len(raw), size)]


HAPPY = sse(": OPENROUTER PROCESSING\n\n", chunk(""), chunk("Hel"), chunk("lo, "), chunk("wörld"),
            chunk(finish="stop"), USAGE, "data: [DONE]\n\n")


def request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {"model": "openai/gpt-4o-mini", "messages": [
        Message(role="system", content="be brief"), Message(role="user", content="hi")]}
    return LLMRequest(**(fields | overrides))


@pytest.fixture
def repo() -> Iterator[OpenRouterRepository]:
    repository = OpenRouterRepository(KEY, base_url=BASE + "/", referer="https://example.test",
                                      title="agentic", connect_timeout=1.0, read_timeout=2.0)
    yield repository
    repository.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def stream_response(body: httpx.SyncByteStream | list[bytes], status: int = 200) -> httpx.Response:
    stream = body if isinstance(body, httpx.SyncByteStream) else Body(body)
    return httpx.Response(status, headers={"content-type": "text/event-stream"}, stream=stream)


def failure(repo: OpenRouterRepository, **kwargs: Any) -> LLMError:
    with pytest.raises(LLMError) as caught:
        repo.generate(request(), **kwargs)
    error = caught.value
    assert KEY not in error.message and KEY not in repr(error) and KEY not in str(error.to_dict())
    assert error.provider == "openrouter"
    return error


# --- success ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [None, 1, 7, 64])
def test_streamed_success(repo: OpenRouterRepository, router: respx.MockRouter, size: int | None) -> None:
    router.post("/chat/completions").mock(
        return_value=stream_response(HAPPY if size is None else rechunk(HAPPY, size)))
    deltas: list[str] = []
    response = repo.generate(request(), on_delta=deltas.append)
    assert response.content == "Hello, wörld"
    assert "".join(deltas) == "Hello, wörld"
    assert (response.id, response.model) == ("gen-123", "openai/gpt-4o-mini-2024")
    assert response.provider == "openrouter"
    assert response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) \
        == (11, 3, 14)


def test_request_body_and_headers(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    route = router.post("/chat/completions").mock(return_value=stream_response(HAPPY))
    repo.generate(request(temperature=0.5, max_tokens=50, stop=["\n\n"]))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["http-referer"] == "https://example.test"
    assert sent.headers["x-title"] == "agentic"
    assert json.loads(sent.content) == {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.5, "max_tokens": 50, "stop": ["\n\n"],
    }  # top_p and the penalties were None, so they are absent rather than null


@pytest.mark.parametrize(("given", "normalised"), [
    ("length", "length"), ("content_filter", "content_filter"), ("tool_calls", "tool_calls"),
    ("stop", "stop"), ("something_new", "stop"),
])
def test_finish_reason_is_normalised(repo: OpenRouterRepository, router: respx.MockRouter,
                                     given: str, normalised: str) -> None:
    router.post("/chat/completions").mock(
        return_value=stream_response(sse(chunk("x"), chunk(finish=given), "data: [DONE]\n\n")))
    assert repo.generate(request()).finish_reason == normalised


def test_final_done_without_trailing_blank_line(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(
        return_value=stream_response(sse(chunk("ok", finish="stop"), "data: [DONE]")))
    assert repo.generate(request()).content == "ok"


def test_non_streamed_json_answer_is_accepted(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    body = {"id": "gen-9", "model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            "choices": [{"message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}]}
    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=body))
    response = repo.generate(request())
    assert (response.content, response.id, response.usage.total_tokens) == ("whole", "gen-9", 2)


def test_one_instance_serves_threads(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(side_effect=lambda _: stream_response(HAPPY))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: repo.generate(request()).content, range(16)))
    assert results == ["Hello, wörld"] * 16


# --- HTTP errors ------------------------------------------------------------------------------------------


def _error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, **extra}}


@pytest.mark.parametrize(("status", "body", "code", "retriable"), [
    (400, _error_body("Invalid model parameter"), ErrorCode.BAD_REQUEST, False),
    (400, _error_body("Provider returned error",
                      metadata={"raw": "This model's maximum context length is 8192 tokens"}),
     ErrorCode.CONTEXT_TOO_LONG, False),
    (401, _error_body("No auth credentials found"), ErrorCode.AUTHENTICATION, False),
    (402, _error_body("Insufficient credits"), ErrorCode.INSUFFICIENT_CREDITS, False),
    (403, _error_body("Key limit exceeded"), ErrorCode.AUTHENTICATION, False),
    (403, _error_body("openai/gpt-4o requires moderation on OpenRouter. Your input was flagged",
                      metadata={"reasons": ["harassment"]}), ErrorCode.CONTENT_REFUSED, False),
    (404, _error_body("No endpoints found for nope/model"), ErrorCode.MODEL_NOT_FOUND, False),
    (408, _error_body("Request timed out"), ErrorCode.TIMEOUT, True),
    (413, _error_body("Payload too large"), ErrorCode.CONTEXT_TOO_LONG, False),
    (418, _error_body("teapot"), ErrorCode.BAD_REQUEST, False),
    (429, _error_body("Rate limit exceeded"), ErrorCode.RATE_LIMITED, True),
    (500, _error_body("Internal Server Error"), ErrorCode.UPSTREAM_ERROR, True),
    (502, "<html>Bad Gateway</html>", ErrorCode.UPSTREAM_ERROR, True),
    (503, _error_body("No available model provider"), ErrorCode.UPSTREAM_ERROR, True),
    (504, "", ErrorCode.UPSTREAM_ERROR, True),
    (529, _error_body("Overloaded"), ErrorCode.OVERLOADED, True),
    (599, _error_body("odd"), ErrorCode.UPSTREAM_ERROR, True),
])
def test_http_status_mapping(repo: OpenRouterRepository, router: respx.MockRouter, status: int,
                             body: dict[str, Any] | str, code: ErrorCode, retriable: bool) -> None:
    response = (httpx.Response(status, json=body) if isinstance(body, dict)
                else httpx.Response(status, text=body))
    router.post("/chat/completions").mock(return_value=response)
    error = failure(repo)
    assert (error.code, error.retriable, error.status) == (code, retriable, status)
    if isinstance(body, dict):
        assert body["error"]["message"] in error.message


def test_html_error_page_is_summarised(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(return_value=httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert "Bad Gateway" in failure(repo).message


@pytest.mark.parametrize(("headers", "expected"), [
    (lambda: {"Retry-After": "17"}, 17.0),
    (lambda: {"Retry-After": format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)}, 60.0),
    (lambda: {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
              "X-RateLimit-Reset": str(int((time.time() + 30) * 1000))}, 30.0),
    (dict, None),
])
def test_rate_limit_retry_after(repo: OpenRouterRepository, router: respx.MockRouter,
                                headers: Callable[[], dict[str, str]], expected: float | None) -> None:
    router.post("/chat/completions").mock(
        return_value=httpx.Response(429, headers=headers(), json=_error_body("Rate limit exceeded")))
    error = failure(repo)
    assert error.code is ErrorCode.RATE_LIMITED and error.retriable
    assert error.retry_after == (None if expected is None else pytest.approx(expected, abs=2))


def test_huge_error_body_is_read_bounded(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    body = Body([b"x" * 65536] * 100)
    router.post("/chat/completions").mock(return_value=httpx.Response(500, stream=body))
    assert failure(repo).code is ErrorCode.UPSTREAM_ERROR
    assert body.sent < 100 and body.closed


def test_echoed_key_never_reaches_the_error(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(
        return_value=httpx.Response(401, json=_error_body(f"Invalid API key {KEY} (Bearer {KEY})")))
    assert failure(repo).code is ErrorCode.AUTHENTICATION  # failure() checks the key is absent


# --- failures inside a 200 stream -------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "code", "retriable"), [
    ({"code": 502, "message": "Provider disconnected unexpectedly"}, ErrorCode.UPSTREAM_ERROR, True),
    ({"code": "429", "message": "Rate limited upstream"}, ErrorCode.RATE_LIMITED, True),
    ({"code": 400, "message": "maximum context length exceeded"}, ErrorCode.CONTEXT_TOO_LONG, False),
    ({"code": "server_error", "message": "Provider disconnected"}, ErrorCode.STREAM_ERROR, True),
    ({"message": "something broke"}, ErrorCode.STREAM_ERROR, True),
])
def test_error_object_inside_the_stream(repo: OpenRouterRepository, router: respx.MockRouter,
                                        error: dict[str, Any], code: ErrorCode, retriable: bool) -> None:
    router.post("/chat/completions").mock(return_value=stream_response(
        sse(chunk("partial "), chunk("", finish="error", error=error), "data: [DONE]\n\n")))
    raised = failure(repo)
    assert (raised.code, raised.retriable) == (code, retriable)
    assert error["message"] in raised.message


def test_finish_reason_error_without_detail(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(
        return_value=stream_response(sse(chunk("a"), chunk(finish="error"), "data: [DONE]\n\n")))
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.STREAM_ERROR, True)


def test_malformed_chunk_is_a_stream_error(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    router.post("/chat/completions").mock(
        return_value=stream_response([b"data: {not json\n\n", b"data: [DONE]\n\n"]))
    assert failure(repo).code is ErrorCode.STREAM_ERROR


def test_stream_cut_mid_way(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    body = Body(HAPPY, fail_after=3)
    router.post("/chat/completions").mock(return_value=stream_response(body))
    seen: list[str] = []
    error = failure(repo, on_delta=seen.append)
    assert (error.code, error.retriable) == (ErrorCode.NETWORK_ERROR, True)
    assert seen == ["Hel"]


@pytest.mark.parametrize("tail", [["data: [DONE]\n\n"], []])
def test_stream_without_finish_reason_is_truncated(repo: OpenRouterRepository, router: respx.MockRouter,
                                                   tail: list[str]) -> None:
    router.post("/chat/completions").mock(return_value=stream_response(sse(chunk("Hel"), chunk("lo"), *tail)))
    error = failure(repo)
    assert (error.code, error.retriable) == (ErrorCode.TRUNCATED, True)


# --- transport failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "code"), [
    (httpx.ReadTimeout("read timed out"), ErrorCode.TIMEOUT),
    (httpx.ConnectTimeout("connect timed out"), ErrorCode.TIMEOUT),
    (httpx.PoolTimeout("pool exhausted"), ErrorCode.TIMEOUT),
    (httpx.ConnectError("name resolution failed"), ErrorCode.NETWORK_ERROR),
    (httpx.RemoteProtocolError("server disconnected"), ErrorCode.NETWORK_ERROR),
])
def test_transport_failures(repo: OpenRouterRepository, router: respx.MockRouter, exc: Exception,
                            code: ErrorCode) -> None:
    router.post("/chat/completions").mock(side_effect=exc)
    error = failure(repo)
    assert (error.code, error.retriable) == (code, True)


def test_read_timeout_mid_stream(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    body = Body(HAPPY, fail_after=2, error=httpx.ReadTimeout("no chunk within the read timeout"))
    router.post("/chat/completions").mock(return_value=stream_response(body))
    assert failure(repo).code is ErrorCode.TIMEOUT


# --- cancellation -----------------------------------------------------------------------------------------


def test_cancel_mid_stream_closes_the_connection(repo: OpenRouterRepository,
                                                  router: respx.MockRouter) -> None:
    chunks = sse(*[chunk(f"t{i} ") for i in range(50)], chunk(finish="stop"), USAGE, "data: [DONE]\n\n")
    body = Body(chunks)
    router.post("/chat/completions").mock(return_value=stream_response(body))
    deltas: list[str] = []
    response = repo.generate(request(), on_delta=deltas.append, should_cancel=lambda: len(deltas) >= 3)
    assert response.finish_reason == "cancelled"
    assert response.content == "t0 t1 t2 " == "".join(deltas)
    assert response.id == "gen-123"
    assert body.sent <= 4 < len(chunks)  # stopped reading at once ...
    assert body.closed  # ... and released the connection


def test_cancel_while_only_keep_alives_arrive(repo: OpenRouterRepository, router: respx.MockRouter) -> None:
    body = Body([b": OPENROUTER PROCESSING\n\n"] * 20 + sse(chunk("late", finish="stop")))
    router.post("/chat/completions").mock(return_value=stream_response(body))
    checks = iter([False, False, True])
    response = repo.generate(request(), should_cancel=lambda: next(checks))
    assert (response.finish_reason, response.content) == ("cancelled", "")
    assert body.sent == 3 and body.closed
