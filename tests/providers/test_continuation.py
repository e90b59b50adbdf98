"""Continuing a cut answer: the prefill request, the exact rejoin after trimmed whitespace, joined segments.

The providers are real (the mock, OpenRouter with respx at the HTTP edge); a segment is cut by a deadline
that has already passed, so no test depends on timing.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from agentic.domain.llm import LLMRequest, LLMResponse, Message, Usage
from agentic.providers.continuation import Continuation, PrefillJoiner, join_segments
from agentic.providers.mock import MockLLMRepository
from agentic.providers.openrouter import OpenRouterRepository
from tests.providers.streams import Body

BASE = "https://openrouter.test/api/v1"


def request(*messages: tuple[str, str], **fields: object) -> LLMRequest:
    pairs = messages or (("user", "Tell me a story"),)
    return LLMRequest(messages=[Message(role=r, content=c) for r, c in pairs],  # type: ignore[arg-type]
                      model="mock-slow-1", **fields)  # type: ignore[arg-type]


# --- the request ------------------------------------------------------------------------------------------


def test_the_text_so_far_becomes_a_final_assistant_message_without_trailing_whitespace() -> None:
    original = request(("system", "be brief"), ("user", "Tell me a story"), temperature=0.3)
    continuation = Continuation.of(original, "Once upon a time \n")
    assert [(m.role, m.content) for m in continuation.request.messages] == [
        ("system", "be brief"), ("user", "Tell me a story"), ("assistant", "Once upon a time")]
    assert continuation.trimmed == " \n"
    assert continuation.request.temperature == 0.3 and continuation.request.model == original.model
    assert original.messages[-1].role == "user"  # the original request is untouched


def test_a_callers_own_prefill_is_extended_not_duplicated() -> None:
    original = request(("user", "List three"), ("assistant", "1."))
    continuation = Continuation.of(original, " apples\n2.")
    assert [(m.role, m.content) for m in continuation.request.messages] == [
        ("user", "List three"), ("assistant", "1. apples\n2.")]


def test_no_text_yet_sends_the_request_unchanged() -> None:
    original = request(max_tokens=100)
    assert Continuation.of(original, "").request == original
    assert Continuation.of(original, "  ").request.messages == original.messages


def test_max_tokens_counts_what_the_segments_already_produced() -> None:
    assert Continuation.of(request(max_tokens=100), "abc", completion_tokens=30).request.max_tokens == 70
    assert Continuation.of(request(max_tokens=100), "abc", completion_tokens=500).request.max_tokens == 1
    assert Continuation.of(request(), "abc", completion_tokens=30).request.max_tokens is None


# --- the rejoin -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("trimmed", "streamed", "kept"), [
    (" ", " world", "world"),             # the model re-emits the space it was denied
    (" ", "world", "world"),              # or glues the next word on: the stored space stays
    (" ", "\n\nNext", "\n\nNext"),        # a different break is kept
    ("\n\n", "\nNext", "Next"),           # part of it re-emitted
    ("\n\n", "\n\n\nNext", "\nNext"),     # more than was trimmed: the extra is the model's
    ("", "  indented", "  indented"),     # nothing trimmed: nothing dropped
])
def test_repeated_whitespace_is_dropped_once(trimmed: str, streamed: str, kept: str) -> None:
    continuation = Continuation(request(), trimmed)
    assert continuation.text(streamed) == kept


@given(trimmed=st.text(alphabet=" \n\t", max_size=4), streamed=st.text(alphabet=" \nab", max_size=12),
       cuts=st.lists(st.integers(min_value=0, max_value=12), max_size=5))
def test_the_joiner_gives_the_same_text_however_the_stream_is_split(
        trimmed: str, streamed: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(streamed), *[min(c, len(streamed)) for c in cuts]})
    joiner = PrefillJoiner(trimmed)
    pieces = [joiner.feed(streamed[a:b]) for a, b in itertools.pairwise(bounds)]
    assert "".join(pieces) == Continuation(request(), trimmed).text(streamed)


def test_every_cut_of_a_mock_answer_continues_to_the_exact_text() -> None:
    mock = MockLLMRepository()
    full = mock.generate(request()).content
    for cut in range(len(full) + 1):
        continuation = Continuation.of(request(), full[:cut])
        deltas: list[str] = []
        rest = continuation.generate(mock, on_delta=deltas.append)
        assert full[:cut] + rest.content == full, cut
        assert "".join(deltas) == rest.content


def test_segments_cut_by_the_deadline_add_up_to_the_uncut_answer() -> None:
    """Each segment is cut after its first token (a deadline already past); the join is the whole answer."""
    original = request(max_tokens=12)
    mock = MockLLMRepository()
    full = mock.generate(original)
    segments: list[LLMResponse] = []
    while not segments or segments[-1].finish_reason == "paused":
        so_far = "".join(s.content for s in segments)
        used = sum(s.usage.completion_tokens for s in segments)
        continuation = Continuation.of(original, so_far, completion_tokens=used)
        segments.append(continuation.generate(mock, deadline=time.monotonic() - 1))
    assert len(segments) == 12 and all(s.finish_reason == "paused" for s in segments[:-1])
    joined = join_segments(segments)
    assert joined.content == full.content and joined.finish_reason == "length"
    assert joined.usage.completion_tokens == full.usage.completion_tokens == 12


def test_join_segments_sums_usage_and_keeps_the_last_finish_reason() -> None:
    a = LLMResponse(id="a", model="m", content="Hello ", usage=Usage.of(10, 2), finish_reason="paused",
                    provider="p")
    b = LLMResponse(id="b", model="m2", content="world", usage=Usage.of(12, 1), finish_reason="stop", provider="p")
    joined = join_segments([a, b])
    assert joined.content == "Hello world" and joined.id == "a" and joined.model == "m2"
    assert joined.usage == Usage(prompt_tokens=22, completion_tokens=3, total_tokens=25)
    assert joined.finish_reason == "stop"
    with pytest.raises(ValueError, match="at least one"):
        join_segments([])


# --- through OpenRouter -----------------------------------------------------------------------------------


@pytest.fixture
def openrouter() -> Iterator[OpenRouterRepository]:
    repository = OpenRouterRepository("sk-or-v1-test", base_url=BASE, referer=None, title="t",
                                      connect_timeout=1, read_timeout=2)
    yield repository
    repository.close()


def chunk(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def test_openrouter_continuation_sends_the_trimmed_prefill_and_rejoins_exactly(
        openrouter: OpenRouterRepository) -> None:
    body = Body([chunk({"id": "g", "choices": [{"delta": {"content": " world"}}]}),
                 chunk({"id": "g", "choices": [{"delta": {}, "finish_reason": "stop"}]}), b"data: [DONE]\n\n"])
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{BASE}/chat/completions").mock(
            return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body))
        deltas: list[str] = []
        response = Continuation.of(request(), "Hello ").generate(openrouter, on_delta=deltas.append)
    sent = json.loads(route.calls.last.request.content)
    assert sent["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert response.content == "world" and deltas == ["world"] and response.finish_reason == "stop"
