"""The mock provider: deterministic, streams like a real one, honours cancellation, says it is mock."""

from __future__ import annotations

import pytest

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.mock import MockLLMRepository


def request(prompt: str, **kw: object) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=prompt)], model="mock-quick", **kw)  # type: ignore[arg-type]


def test_output_is_a_deterministic_function_of_the_prompt() -> None:
    mock = MockLLMRepository()
    a, b, c = mock.generate(request("hello")), mock.generate(request("hello")), mock.generate(request("other"))
    assert a.content == b.content and a.content != c.content
    assert a.provider == "mock" and a.finish_reason == "stop"
    assert a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens > 0


def test_streams_deltas_that_add_up_to_the_content() -> None:
    deltas: list[str] = []
    response = MockLLMRepository().generate(request("stream me", max_tokens=12), on_delta=deltas.append)
    assert len(deltas) == 12 and "".join(deltas) == response.content
    assert response.finish_reason == "length"


def test_cancellation_stops_between_chunks_and_keeps_the_partial_text() -> None:
    deltas: list[str] = []
    response = MockLLMRepository().generate(
        request("cancel me", max_tokens=50), on_delta=deltas.append, should_cancel=lambda: len(deltas) >= 5)
    assert response.finish_reason == "cancelled"
    assert len(deltas) == 5 and response.content == "".join(deltas)


def test_asked_to_fail_it_raises_a_permanent_error() -> None:
    with pytest.raises(LLMError) as caught:
        MockLLMRepository().generate(request("please [mock:fail]"))
    assert caught.value.code is ErrorCode.BAD_REQUEST and not caught.value.retriable
