"""What a job kind's handler receives and returns: one model call, described without dicts.

The same handler runs a direct request (no hooks) and a job's provider step (progress and cancellation
hooks), so a kind's logic exists once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from agentic.domain.llm import LLMResponse
from agentic.providers.base import CancelCheck, DeltaCallback, LLMProvider

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[RequestT]):
    """A request to run: the provider, the kind's request, the model to use, and the streaming hooks."""

    llm: LLMProvider
    request: RequestT
    model: str
    on_delta: DeltaCallback | None = None
    should_cancel: CancelCheck | None = None


@dataclass(frozen=True)
class Generation(Generic[ResultT]):
    """A handler's answer: the kind's result (stored as the job's response), its text, and the model's
    response (usage, finish reason; None when no model was called)."""

    result: ResultT
    text: str
    llm: LLMResponse | None = None

    @property
    def cancelled(self) -> bool:
        return self.llm is not None and self.llm.finish_reason == "cancelled"
