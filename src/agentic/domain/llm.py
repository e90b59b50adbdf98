"""Requests to and responses from a language model, validated at the edge of the system."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

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
#: What the document says of every text field: it matches no NUL. A ``not`` beside the length limits rather
#: than ``pattern: ^[^\u0000]*$``: schema-driven generators fold a pattern into the length bounds, and a
#: ``{1,1000000}`` quantifier is past what they can draw from, so they found no valid body at all.
NO_NUL_SCHEMA: dict[str, Any] = {"not": {"pattern": r"\u0000"}}
#: Preview content is sent inside a prompt (instructions and the title, up to 500 characters): it must leave
#: room for them within one message's MAX_MESSAGE_CHARS, or a preview near the limit fails at the provider.
MAX_PREVIEW_CONTENT_CHARS = MAX_MESSAGE_CHARS - 1_000


def _no_nul(value: str) -> str:
    # PostgreSQL text and JSONB cannot hold NUL, and no database or provider can take a lone UTF-16
    # surrogate ("\ud800", which JSON's \u escapes allow): refuse them at the edge, not in a failed write.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone UTF-16 surrogates (\\ud800-\\udfff)") from None
    return value


Text = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra=NO_NUL_SCHEMA)]


def _whole_number(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 5.0 included; strict validation keeps refusing
    # 5.5, "5" and true.
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: An integer as JSON Schema means it (see ``_whole_number``); constraints go before the validator
#: (``Annotated[int, Field(ge=1), WHOLE_NUMBER]``) so that they stay in the JSON schema.
WHOLE_NUMBER = BeforeValidator(_whole_number)

#: The roles that make a conversation (a request of system messages alone is refused).
CONVERSATION_ROLES = [role for role in get_args(Role) if role != "system"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    role: Role
    content: Annotated[Text, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


class LLMRequest(BaseModel):
    """What a client asks a model for. Unknown fields are refused, so a typo is a 422, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    messages: Annotated[list[Message], Field(
        min_length=1, max_length=MAX_MESSAGES,
        description="the conversation; system messages become the system prompt, and at least one message "
                    "must be a user or assistant message",
        json_schema_extra={"contains": {"type": "object", "required": ["role"],
                                        "properties": {"role": {"enum": CONVERSATION_ROLES}}}})]
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID_CHARS, pattern=r"^[\w.:/@+-]+$")]
    temperature: Annotated[float | None, Field(ge=0.0, le=2.0)] = None
    max_tokens: Annotated[int, Field(ge=1, le=200_000), WHOLE_NUMBER] | None = None
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
    model_config = ConfigDict(frozen=True, defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


class LLMResponse(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    model: str
    content: str
    usage: Usage = Usage()
    finish_reason: FinishReason = "stop"
    provider: str


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    content: Annotated[Text, Field(min_length=1, max_length=MAX_PREVIEW_CONTENT_CHARS)]

    @property
    def needs_ai(self) -> bool:
        return len(self.content) > PREVIEW_MAX_CHARS


class PreviewResult(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    preview: str
    used_ai: bool


def estimate_tokens(texts: Iterable[str]) -> int:
    """A cheap, provider-neutral estimate (about four characters a token), good enough for routing."""
    return math.ceil(sum(len(t) for t in texts) / 4)


class ContextDocument(BaseModel):
    """A document the caller wants the model to see, composed into the system prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    content: Annotated[Text, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
