"""Continuing an answer cut at the step budget, and joining its segments into one response.

A continuation is the same request with the text so far appended as a final ``assistant`` message (an
assistant prefill): a model that honours it (Anthropic's natively; many through OpenRouter) carries on from
the last character. Anthropic answers 400 to a prefill that ends in whitespace, and OpenRouter forwards the
message as is to whichever provider serves the model, so the prefill is always sent with its trailing
whitespace trimmed. The stored text keeps that whitespace; the continuation usually starts by re-emitting
it (``"Hello"`` + ``" world"`` after a trimmed ``"Hello "``), so the continuation's leading characters that
repeat the trimmed whitespace are dropped, and the joined text is exact.

Typical use, one segment per step::

    continuation = Continuation.of(request, text_so_far, completion_tokens=used_so_far)
    segment = continuation.generate(llm, on_delta=save, should_cancel=cancelled, deadline=deadline)
    # segment.content is exactly what follows text_so_far; segment.finish_reason "paused" = go again
    response = join_segments([*earlier_segments, segment])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agentic.domain.llm import LLMRequest, LLMResponse, Message, Usage
from agentic.providers.base import CancelCheck, DeltaCallback, LLMProvider


@dataclass(frozen=True)
class Continuation:
    """The request that continues ``text_so_far``, and how to read its answer back exactly.

    ``request`` carries the prefill (trailing whitespace trimmed, merged into a final assistant message the
    caller's request may already end with); ``trimmed`` is the whitespace left out of it.
    """

    request: LLMRequest
    trimmed: str = ""

    @classmethod
    def of(cls, request: LLMRequest, text_so_far: str, *, completion_tokens: int = 0) -> Continuation:
        """Build the continuation of ``request`` after ``text_so_far`` (the stored segments, joined).

        ``completion_tokens`` (the segments' completion tokens, summed) is taken off ``max_tokens``, which
        providers apply per request: the whole answer stays within what the caller asked for.
        """
        prefill = text_so_far.rstrip()
        trimmed = text_so_far[len(prefill):]
        messages = list(request.messages)
        if prefill:
            if messages[-1].role == "assistant":  # the caller's own prefill: the answer continues it
                messages[-1] = Message(role="assistant", content=messages[-1].content + prefill)
            else:
                messages.append(Message(role="assistant", content=prefill))
        update: dict[str, object] = {"messages": messages}
        if request.max_tokens is not None:
            update["max_tokens"] = max(1, request.max_tokens - completion_tokens)
        # model_validate, not model_copy: the request's validators (sizes, NUL) apply to the prefill too.
        return cls(LLMRequest.model_validate({**request.model_dump(), **update}), trimmed)

    def joiner(self) -> PrefillJoiner:
        """A fresh filter for this continuation's stream of deltas."""
        return PrefillJoiner(self.trimmed)

    def text(self, content: str) -> str:
        """What ``content`` (the continuation's whole answer) adds after the stored text."""
        joiner = self.joiner()
        return joiner.feed(content)

    def finish(self, response: LLMResponse) -> LLMResponse:
        """The continuation's response with its content as it follows the stored text."""
        return response.model_copy(update={"content": self.text(response.content)})

    def generate(
        self,
        llm: LLMProvider,
        *,
        on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        """Run the continuation: deltas and content are those that follow the stored text exactly."""
        joiner = self.joiner()

        def forward(delta: str) -> None:
            text = joiner.feed(delta)
            if text and on_delta is not None:
                on_delta(text)

        response = llm.generate(self.request, on_delta=forward, should_cancel=should_cancel, deadline=deadline)
        return self.finish(response)


@dataclass
class PrefillJoiner:
    """Drops the continuation's leading characters while they repeat the trimmed whitespace.

    The stored text already ends with that whitespace; a model continuing the trimmed prefill writes it (or
    part of it) again. Matching stops at the first character that differs, so anything else is kept:
    ``" "`` trimmed, then ``"\\n\\nNext"`` streamed, stays ``"\\n\\nNext"``. Works across delta boundaries.
    """

    pending: str
    _matching: bool = field(default=True, repr=False)

    def feed(self, delta: str) -> str:
        if not self._matching or not delta:
            return delta
        index = 0
        while index < len(delta) and self.pending and delta[index] == self.pending[0]:
            index += 1
            self.pending = self.pending[1:]
        if index < len(delta) or not self.pending:
            self._matching = False
        return delta[index:]


def join_segments(segments: Sequence[LLMResponse]) -> LLMResponse:
    """One response from an answer's segments, in order: the texts joined, usage summed (each continuation
    pays for its prompt again, prefill included), the last segment's finish reason, the first one's id."""
    if not segments:
        raise ValueError("join_segments needs at least one segment")
    first, last = segments[0], segments[-1]
    prompt = sum(s.usage.prompt_tokens for s in segments)
    completion = sum(s.usage.completion_tokens for s in segments)
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion,
                  total_tokens=sum(s.usage.total_tokens for s in segments))
    return LLMResponse(id=first.id, model=last.model, content="".join(s.content for s in segments), usage=usage,
                       finish_reason=last.finish_reason, provider=last.provider)
