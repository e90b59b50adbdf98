"""A job kind's handler: the model request a kind's request becomes, and the result its answer becomes.

The handler comes in two halves so the model call between them can run however the route requires: at
once for a direct request, streamed into the row (in segments, under a step time budget) for a queued
job, or offloaded to the Inngest server. The kind's logic exists once; nothing crosses a step as a dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from agentic.domain.llm import LLMRequest, LLMResponse
from agentic.providers.base import LLMProvider

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class Ready(Generic[ResultT]):
    """A result that needs no model call (a preview of content short enough to be its own)."""

    result: ResultT


@dataclass(frozen=True)
class Handler(Generic[RequestT, ResultT]):
    #: The model request for a kind's request and the model that runs it, or a result ready without one.
    prompt: Callable[[RequestT, str], LLMRequest | Ready[ResultT]]
    #: The kind's result from the model's whole answer (its segments joined, or the offloaded response).
    result: Callable[[RequestT, LLMResponse], ResultT]

    def run(self, llm: LLMProvider, request: RequestT, model: str) -> ResultT:
        """The whole thing at once (a direct request): prompt, one model call, result."""
        prompt = self.prompt(request, model)
        if isinstance(prompt, Ready):
            return prompt.result
        return self.result(request, llm.generate(prompt))
