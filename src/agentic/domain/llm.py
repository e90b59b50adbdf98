"""Requests to and responses from a language model, validated at the edge of the system."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant"]

#: Normalised across providers; ``cancelled`` and ``truncated`` are ours (stopped early / stream cut), and so
#: is ``paused``: the step's time budget ran out mid-stream and the answer is to be continued in the next step.
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "error", "cancelled", "truncated",
                       "paused"]

MAX_MESSAGES = 500
MAX_MESSAGE_CHARS = 1_000_000
MAX_MODEL_ID_CHARS = 200
MAX_STOP_SEQUENCES = 4
PREVIEW_MAX_CHARS = 250


def _no_nul(value: str) -> str:
    # PostgreSQL text and JSONB cannot hold NUL; refuse it at the edge instead of failing a write later.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: Annotated[Text, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


class LLMRequest(BaseModel):
    """What a client asks a model for. Unknown fields are refused, so a typo is a 422, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: Annotated[list[Message], Field(
        min_length=1, max_length=MAX_MESSAGES,
        description="the conversation; system messages become the system prompt, and at least one message "
                    "must be a user or assistant message")]
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID_CHARS, pattern=r"^[\w.:/@+-]+$")]
    temperature: Annotated[float | None, Field(ge=0.0, le=2.0)] = None
    max_tokens: Annotated[int | None, Field(ge=1, le=200_000)] = None
    top_p: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    stop: Annotated[list[Annotated[Text, Field(min_length=1, max_length=200)]] | None,
                    Field(max_length=MAX_STOP_SEQUENCES)] = None
    frequency_penalty: Annotated[float | None, Field(ge=-2.0, le=2.0)] = None
    presence_penalty: Annotated[float | None, Field(ge=-2.0, le=2.0)] = None

    @field_validator("messages")
    @classmethod
    def _needs_a_non_system_message(cls, messages: list[Message]) -> list[Message]:
        if all(m.role == "system" for m in messages):
            raise ValueError("at least one user or assistant message is required")
        return messages

    @property
    def system_prompt(self) -> str | None:
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def conversation(self) -> list[Message]:
        return [m for m in self.messages if m.role != "system"]

    def estimated_prompt_tokens(self) -> int:
        return estimate_tokens(m.content for m in self.messages)


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


class LLMResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    content: str
    usage: Usage = Usage()
    finish_reason: FinishReason = "stop"
    provider: str


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    content: Annotated[Text, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]

    @property
    def needs_ai(self) -> bool:
        return len(self.content) > PREVIEW_MAX_CHARS


class PreviewResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    preview: str
    used_ai: bool


def estimate_tokens(texts: Iterable[str]) -> int:
    """A cheap, provider-neutral estimate (about four characters a token), good enough for routing."""
    return math.ceil(sum(len(t) for t in texts) / 4)


class ContextDocument(BaseModel):
    """A document the caller wants the model to see, composed into the system prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    content: Annotated[Text, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
