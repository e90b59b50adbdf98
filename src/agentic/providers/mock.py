"""A deterministic offline provider for development, demos and benchmarks.

Its output is a pure function of the prompt; it streams word by word at a configurable rate, so progress,
cancellation and SSE behave as they do against a real provider. Only ``LLM_PROVIDER=mock`` selects it.
"""

from __future__ import annotations

import hashlib
import time

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import FinishReason, LLMRequest, LLMResponse, Usage, estimate_tokens
from agentic.providers.base import CancelCheck, DeltaCallback

_WORDS = ("the", "job", "queue", "streams", "every", "token", "durably", "while", "clients", "poll",
          "and", "steps", "retry", "until", "done", "model", "answers", "slowly", "but", "surely")
DEFAULT_MAX_TOKENS = 64


class MockLLMRepository:
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
    ) -> LLMResponse:
        prompt = request.conversation[-1].content
        if "[mock:fail]" in prompt:
            raise LLMError(ErrorCode.BAD_REQUEST, "the mock provider was asked to fail", provider=self.name,
                           status=400)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        digest = hashlib.sha256(f"{request.model}\n{prompt}".encode()).digest()
        limit = request.max_tokens or DEFAULT_MAX_TOKENS
        tokens = [("" if i == 0 else " ") + _WORDS[digest[i % len(digest)] % len(_WORDS)]
                  for i in range(limit)]
        delay = 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
        emitted: list[str] = []
        finish: FinishReason = "length" if request.max_tokens else "stop"
        for token in tokens:
            if should_cancel is not None and should_cancel():
                finish = "cancelled"
                break
            if delay:
                time.sleep(delay)
            emitted.append(token)
            if on_delta is not None:
                on_delta(token)
        content = "".join(emitted)
        return LLMResponse(
            id="mock-" + digest.hex()[:16], model=request.model, content=content,
            usage=Usage.of(request.estimated_prompt_tokens(), estimate_tokens([content]) if content else 0),
            finish_reason=finish,
            provider=self.name,
        )
