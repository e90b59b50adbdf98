"""The step time budget: at the deadline a provider stops reading, closes upstream and returns the text so
far as ``paused``; before it, nothing changes. Providers are real; only their network edge is mocked
(respx), or a loopback server stands in where a real socket must fall silent."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.llm import LLMRequest, Message
from agentic.providers.budget import PAUSED, deadline_in, expired, watch_deadline
from agentic.providers.claude import ClaudeRepository
from agentic.providers.mock import MockLLMRepository
from agentic.providers.openrouter import OpenRouterRepository
from tests.providers.streams import Body
from tests.providers.test_claude import happy, message_start, text_delta

OPENROUTER_BASE = "https://openrouter.test/api/v1"
ANTHROPIC_BASE = "https://anthropic.test"


def request(model: str = "mock-slow-1", **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content="Tell me a long story")], model=model, **fields)


def past() -> float:
    return time.monotonic() - 1


def test_deadline_helpers() -> None:
    assert deadline_in(5, now=100.0) == 105.0
    assert not expired(None) and not expired(deadline_in(60)) and expired(past())


# --- mock ------------------------------------------------------------------------------------------------


def test_mock_pauses_at_the_deadline_with_the_words_so_far() -> None:
    slow = MockLLMRepository(tokens_per_second=20)
    full = MockLLMRepository().generate(request(max_tokens=40))
    deltas: list[str] = []
    paused = slow.generate(request(max_tokens=40), on_delta=deltas.append, deadline=deadline_in(0.5))
    assert paused.finish_reason == PAUSED
    assert 0 < len(deltas) < 40 and paused.content == "".join(deltas)
    assert full.content.startswith(paused.content)
    assert paused.usage.completion_tokens == len(deltas)


def test_mock_finishing_within_the_budget_is_not_paused() -> None:
    assert MockLLMRepository().generate(request(max_tokens=5), deadline=deadline_in(60)).finish_reason == "length"
    # the deadline passing on the very last word is no reason to continue
    one = MockLLMRepository().generate(request(max_tokens=1), deadline=past())
    assert one.finish_reason == "length"


# --- OpenRouter ------------------------------------------------------------------------------------------


def or_chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    return f"data: {json.dumps({'id': 'gen-1', 'choices': [{'delta': delta, 'finish_reason': finish}]})}\n\n".encode()


class SlowBody(Body):
    """The first ``immediate`` chunks at once, then a pause before each, like a model producing tokens."""

    def __init__(self, chunks: list[bytes], delay: float, immediate: int = 3) -> None:
        super().__init__(chunks)
        self.delay = delay
        self.immediate = immediate

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(super().__iter__()):
            if index >= self.immediate:
                time.sleep(self.delay)
            yield chunk


@pytest.fixture
def openrouter() -> Iterator[OpenRouterRepository]:
    repository = OpenRouterRepository("sk-or-v1-test", base_url=OPENROUTER_BASE, referer=None, title="t",
                                      connect_timeout=1, read_timeout=10)
    yield repository
    repository.close()


def test_openrouter_pauses_keeps_the_text_and_closes_the_stream(openrouter: OpenRouterRepository) -> None:
    words = [f"w{i} " for i in range(40)]
    body = SlowBody([*[or_chunk(w) for w in words], or_chunk(finish="stop"), b"data: [DONE]\n\n"], delay=0.05)
    deltas: list[str] = []
    with respx.mock() as router:
        router.post(f"{OPENROUTER_BASE}/chat/completions").mock(
            return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body))
        response = openrouter.generate(request("meta-llama/llama-3.3-70b-instruct"), on_delta=deltas.append,
                                       deadline=deadline_in(0.5))
    assert response.finish_reason == PAUSED
    assert response.content == "".join(deltas) == "".join(words[:len(deltas)]) and 0 < len(deltas) < 40
    assert body.closed and body.sent < len(body.chunks)  # upstream dropped, the rest never read
    assert response.usage.completion_tokens > 0  # estimated: the usage chunk never came


def test_openrouter_keeps_reading_once_the_finish_reason_came(openrouter: OpenRouterRepository) -> None:
    body = Body([or_chunk("done"), or_chunk(finish="stop"), b"data: [DONE]\n\n"])
    with respx.mock() as router:
        router.post(f"{OPENROUTER_BASE}/chat/completions").mock(
            return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body))
        response = openrouter.generate(request("x/y"), deadline=past())
    # the deadline had passed before the first chunk: that chunk is kept and the stream paused after it
    assert response.finish_reason == PAUSED and response.content == "done"


class _Silent(BaseHTTPRequestHandler):
    """Sends one SSE chunk, then says nothing until released: an upstream gone quiet."""

    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        data = or_chunk("first words")
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def silent_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Silent.release.set()
    server.shutdown()
    server.server_close()


def test_a_silent_upstream_is_cut_at_the_deadline_not_at_the_read_timeout(silent_server: str) -> None:
    """The read timeout is 20 s; without the socket shutdown this would end in a timeout error."""
    repository = OpenRouterRepository("sk-or-v1-test", base_url=silent_server, referer=None, title="t",
                                      connect_timeout=2, read_timeout=20)
    try:
        response = repository.generate(request("x/y"), deadline=deadline_in(0.5))
    finally:
        repository.close()
    assert response.finish_reason == PAUSED and response.content == "first words"


def test_watch_deadline_arms_nothing_without_a_socket() -> None:
    with watch_deadline(httpx.Response(200), deadline_in(0.01)):
        time.sleep(0.05)  # no error: there was no socket to shut


def test_watch_deadline_shuts_the_socket_down(silent_server: str) -> None:
    with httpx.Client() as client, client.stream("POST", silent_server, content=b"{}") as response:
        with watch_deadline(response, deadline_in(0.2)), pytest.raises(httpx.HTTPError):
            for _ in response.iter_bytes():
                pass  # the first chunk comes, then the read blocks until the shutdown ends it
        sock = response.extensions["network_stream"].get_extra_info("socket")
        assert isinstance(sock, socket.socket)


# --- Claude ----------------------------------------------------------------------------------------------


def test_claude_pauses_with_the_text_so_far() -> None:
    import anthropic  # noqa: F401  (imported up front: the first import alone can outlast a short deadline)

    repository = ClaudeRepository("sk-ant-test", base_url=ANTHROPIC_BASE, connect_timeout=1, read_timeout=5)
    events = [message_start(input_tokens=30, cache_read=0), *[text_delta(f"w{i} ") for i in range(30)]]
    body = SlowBody(events, delay=0.1)
    deltas: list[str] = []
    try:
        with respx.mock(base_url=ANTHROPIC_BASE) as router:
            router.post("/v1/messages").mock(return_value=httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=body))
            response = repository.generate(request("claude-sonnet-4"), on_delta=deltas.append,
                                           deadline=deadline_in(1.0))
    finally:
        repository.close()
    assert response.finish_reason == PAUSED and 0 < len(deltas) < 30
    assert response.content == "".join(deltas) and body.closed and body.sent < len(events)
    assert response.usage.prompt_tokens == 30 and response.usage.completion_tokens > 1


def test_claude_within_the_budget_finishes_normally() -> None:
    repository = ClaudeRepository("sk-ant-test", base_url=ANTHROPIC_BASE, connect_timeout=1, read_timeout=5)
    try:
        with respx.mock(base_url=ANTHROPIC_BASE) as router:
            router.post("/v1/messages").mock(return_value=httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=Body(happy("Hello", " there"))))
            response = repository.generate(request("claude-sonnet-4"), deadline=deadline_in(60))
    finally:
        repository.close()
    assert response.finish_reason == "stop" and response.content == "Hello there"
    assert response.usage.completion_tokens == 15  # the provider's count, not an estimate
