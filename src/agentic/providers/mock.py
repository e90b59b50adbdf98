"""A deterministic offline provider for development, demos and benchmarks.

Its output is a pure function of the prompt; it streams word by word at a configurable rate, so progress,
cancellation and SSE behave as they do against a real provider. Only ``LLM_PROVIDER=mock`` selects it.
"""

from __future__ import annotations

import hashlib
import time

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import FinishReason, LLMRequest, LLMResponse, Usage
from agentic.providers.base import CancelCheck, DeltaCallback
from agentic.providers.budget import expired

_WORDS = ("the", "job", "queue", "streams", "every", "token", "durably", "while", "clients", "poll",
          "and", "steps", "retry", "until", "done", "model", "answers", "slowly", "but", "surely")
DEFAULT_MAX_TOKENS = 64
#: The longest answer the mock gives (its max_tokens is at most 200,000, like the API's).
MAX_ANSWER_TOKENS = 200_000


class MockLLMRepository:
    """Streams a word salad determined by the model and the last user message.

    Like a model that honours an assistant prefill (Anthropic's), it continues a conversation ending with
    an assistant message that begins its answer, so the step budget's continuations work offline too.
    ``max_tokens`` bounds each request (as real providers do); without it the answer is
    ``DEFAULT_MAX_TOKENS`` words long. Each word is one completion token.
    """

    name = "mock"

    def __init__(self, *, latency_ms: int = 0, tokens_per_second: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self.tokens_per_second = tokens_per_second

    def generate(
        self,
        request: LLMRequest,
        *,
        on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        conversation = request.conversation
        prefill = conversation[-1].content if conversation[-1].role == "assistant" else ""
        prompt = next((m.content for m in reversed(conversation) if m.role != "assistant"), "")
        if "[mock:fail]" in prompt:
            raise LLMError(ErrorCode.BAD_REQUEST, "the mock provider was asked to fail", provider=self.name,
                           status=400)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        digest = hashlib.sha256(f"{request.model}\n{prompt}".encode()).digest()
        tokens = _continuation(digest, prefill, request.max_tokens)
        delay = 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
        emitted: list[str] = []
        finish: FinishReason = "length" if request.max_tokens else "stop"
        for index, token in enumerate(tokens):
            if should_cancel is not None and should_cancel():
                finish = "cancelled"
                break
            if delay:
                time.sleep(delay)
            emitted.append(token)
            if on_delta is not None:
                on_delta(token)
            if index + 1 < len(tokens) and expired(deadline):
                finish = "paused"
                break
        content = "".join(emitted)
        return LLMResponse(
            id="mock-" + digest.hex()[:16], model=request.model, content=content,
            usage=Usage.of(request.estimated_prompt_tokens(), len(emitted)),
            finish_reason=finish,
            provider=self.name,
        )


def _word(digest: bytes, index: int) -> str:
    return ("" if index == 0 else " ") + _WORDS[digest[index % len(digest)] % len(_WORDS)]


def _continuation(digest: bytes, prefill: str, max_tokens: int | None) -> list[str]:
    """The tokens that follow ``prefill``: the first may be the rest of a word the prefill cut in two.

    A prefill that is not the start of this prompt's answer is treated as history: the answer starts over.
    """
    tokens: list[str] = []
    index = 0
    if prefill:
        words: list[str] = []
        length = 0
        while length < len(prefill) and index < MAX_ANSWER_TOKENS:
            words.append(_word(digest, index))
            length += len(words[-1])
            index += 1
        written = "".join(words)
        if not written.startswith(prefill):
            index = 0
        elif length > len(prefill):  # the prefill ends inside a word (or before its leading space)
            tokens.append(written[len(prefill):])
    end = index - len(tokens) + max_tokens if max_tokens else DEFAULT_MAX_TOKENS
    tokens.extend(_word(digest, i) for i in range(index, max(index, min(end, MAX_ANSWER_TOKENS))))
    return tokens
