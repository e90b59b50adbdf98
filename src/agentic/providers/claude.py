"""Anthropic's Messages API through the official SDK, always streamed.

The SDK is imported on first use, not with this module: it is large, and a worker or web process that
never talks to Anthropic should not pay for it at start-up. The SDK's own retries are off (``max_retries=0``)
because retrying is the job queue's decision, made once, with the error classified here.
Unlike the original agent-SDK wrapper this sends the conversation as real turns, honours the sampling
parameters, reports the provider's token counts and stop reason, and keeps the key on the instance rather
than in the process environment.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import FinishReason, LLMRequest, LLMResponse, Usage, estimate_tokens
from agentic.providers.base import CancelCheck, DeltaCallback
from agentic.providers.budget import PAUSED, expired, watch_deadline
from agentic.providers.errors import error_from_status, redact

if TYPE_CHECKING:
    import anthropic
    from anthropic import Anthropic, APIStatusError
    from anthropic.types import MessageParam, RawMessageStreamEvent

#: Anthropic requires max_tokens; used when the request leaves it out.
DEFAULT_MAX_TOKENS = 4096
_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
#: The HTTP status each documented error type travels with, so an ``error`` event that arrives inside a
#: 200 stream is classified exactly as the same failure would be before the stream started.
_ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
    "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


@dataclass
class _Message:
    """What the event stream has told us so far; text is kept as deltas and joined once."""

    parts: list[str] = field(default_factory=list)
    id: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    stopped: bool = False

    def apply(self, event: RawMessageStreamEvent) -> str | None:
        """Record one event; returns its text delta, if any."""
        if event.type == "message_start":
            self.id, self.model = event.message.id, event.message.model
            usage = event.message.usage
            self._count_input(usage.input_tokens, usage.cache_creation_input_tokens,
                              usage.cache_read_input_tokens)
            self.output_tokens = usage.output_tokens
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            self.parts.append(event.delta.text)
            return event.delta.text
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            delta_usage = event.usage  # counts here are cumulative, and input ones optional
            self.output_tokens = delta_usage.output_tokens
            if delta_usage.input_tokens is not None:
                self._count_input(delta_usage.input_tokens, delta_usage.cache_creation_input_tokens,
                                  delta_usage.cache_read_input_tokens)
        elif event.type == "message_stop":
            self.stopped = True
        return None

    def _count_input(self, fresh: int, cache_writes: int | None, cache_reads: int | None) -> None:
        """Cached prompt tokens are still prompt tokens (and billed), so they are counted in."""
        self.input_tokens = fresh + (cache_writes or 0) + (cache_reads or 0)

    def response(self, request: LLMRequest, finish: FinishReason) -> LLMResponse:
        content = "".join(self.parts)
        # A stream stopped early never got its final count: estimate what it streamed.
        output_tokens = self.output_tokens if self.stopped else max(self.output_tokens, estimate_tokens([content]))
        return LLMResponse(id=self.id or f"anthropic-{uuid.uuid4().hex}", model=self.model or request.model,
                           content=content, usage=Usage.of(self.input_tokens, output_tokens),
                           finish_reason=finish, provider=ClaudeRepository.name)


class ClaudeRepository:
    """Streams messages from Anthropic. One instance (and its SDK client) is shared across threads."""

    name = "anthropic"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/") if base_url else None
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client: Anthropic | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"ClaudeRepository(base_url={self._base_url!r})"

    def generate(
        self,
        request: LLMRequest,
        *,
        on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        import anthropic  # lazy on purpose, see the module docstring

        message = _Message()
        try:
            with self._open_stream(request) as stream, watch_deadline(stream.response, deadline):
                return self._consume(stream, request, on_delta, should_cancel, message=message, deadline=deadline)
        except (anthropic.APIConnectionError, httpx.RequestError) as exc:
            if not (message.id is not None and expired(deadline)):  # else the deadline's socket shutdown
                raise self._transport_error(exc) from exc
            return message.response(request, PAUSED)
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except anthropic.AnthropicError as exc:  # anything else the SDK may raise: not ours to guess at
            raise LLMError(ErrorCode.INTERNAL, redact(f"Anthropic SDK error ({type(exc).__name__}: {exc})",
                                                      (self._api_key,)),
                           provider=self.name) from exc

    def _transport_error(self, exc: Exception) -> LLMError:
        """A timeout or a failed connection; errors raised while reading the body come straight from httpx,
        not wrapped by the SDK."""
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError | httpx.TimeoutException):
            return LLMError(ErrorCode.TIMEOUT, f"Anthropic did not answer in time ({type(exc).__name__})",
                            provider=self.name)
        return LLMError(ErrorCode.NETWORK_ERROR,
                        redact(f"connection to Anthropic failed ({type(exc).__name__}: {exc})", (self._api_key,)),
                        provider=self.name)

    def close(self) -> None:
        """Release pooled connections (at shutdown)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _sdk(self) -> Anthropic:
        with self._lock:
            if self._client is None:
                import anthropic

                self._client = anthropic.Anthropic(api_key=self._api_key, base_url=self._base_url,
                                                   max_retries=0, timeout=self._timeout)
            return self._client

    def _open_stream(self, request: LLMRequest) -> anthropic.Stream[RawMessageStreamEvent]:
        from anthropic import omit

        messages: list[MessageParam] = [
            {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
            for m in request.conversation
        ]
        system = request.system_prompt
        return self._sdk().messages.create(
            model=request.model,
            messages=messages,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
            system=system if system is not None else omit,
            temperature=request.temperature if request.temperature is not None else omit,
            top_p=request.top_p if request.top_p is not None else omit,
            stop_sequences=request.stop if request.stop else omit,
            stream=True,
        )

    def _consume(
        self,
        stream: anthropic.Stream[RawMessageStreamEvent],
        request: LLMRequest,
        on_delta: DeltaCallback | None,
        should_cancel: CancelCheck | None,
        *,
        message: _Message,
        deadline: float | None = None,
    ) -> LLMResponse:
        """Read events; returning from inside the caller's ``with`` closes the connection at once (a cancel,
        or the deadline: then the text so far is returned as ``paused``)."""
        for event in stream:
            if should_cancel is not None and should_cancel():
                return message.response(request, "cancelled")
            delta = message.apply(event)
            if delta and on_delta is not None:
                on_delta(delta)
            if message.stopped:
                break
            if expired(deadline) and message.stop_reason is None:
                return message.response(request, PAUSED)
        if not message.stopped:
            raise LLMError(ErrorCode.TRUNCATED, "the Anthropic stream ended before message_stop",
                           provider=self.name)
        return message.response(request, _STOP_REASONS.get(message.stop_reason or "", "stop"))

    def _status_error(self, exc: APIStatusError) -> LLMError:
        """Classify an HTTP error, or an ``error`` event inside a 200 stream (the SDK raises both alike)."""
        error_type, message = _error_details(exc.body)
        message = message or exc.message
        secrets = (self._api_key,)
        if exc.status_code >= 400:
            return error_from_status(exc.status_code, message, provider=self.name,
                                     headers=exc.response.headers, secrets=secrets)
        # An error event inside a 200 stream: classify by its type. The 200's rate-limit headers describe
        # the request that started, not this failure, so they are not read as a retry hint.
        status = _ERROR_TYPE_STATUS.get(error_type or "")
        if status is None:
            return LLMError(ErrorCode.STREAM_ERROR, redact(message, secrets), provider=self.name)
        return error_from_status(status, message, provider=self.name, headers={}, secrets=secrets)


def _error_details(body: object) -> tuple[str | None, str | None]:
    """``(error.type, error.message)`` from Anthropic's ``{"type": "error", "error": {...}}`` body."""
    error: Any = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None
    error_type, message = error.get("type"), error.get("message")
    return (error_type if isinstance(error_type, str) else None,
            message if isinstance(message, str) and message else None)

