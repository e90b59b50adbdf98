"""OpenRouter's OpenAI-compatible chat completions API, always streamed.

Streaming is used even when the caller wants only the final text: it keeps the connection alive through long
generations (the read timeout bounds silence between chunks, not the whole call), lets progress be saved, and
lets a cancelled job close the connection at once instead of paying for tokens nobody will read.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import FinishReason, LLMRequest, LLMResponse, Usage, estimate_tokens
from agentic.eventstream import SSEDecoder, SSEEvent
from agentic.providers.base import CancelCheck, DeltaCallback
from agentic.providers.budget import PAUSED, expired, watch_deadline
from agentic.providers.errors import error_from_status, redact

#: How much of an error body is read; enough for any JSON error, bounded against a runaway HTML page.
MAX_ERROR_BODY_BYTES = 64 * 1024
_OPTIONAL_FIELDS = ("temperature", "max_tokens", "top_p", "stop", "frequency_penalty", "presence_penalty")
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls",
    "error": "error",
}


# --- Accumulating one completion --------------------------------------------------------------------------


@dataclass
class _Completion:
    """What the stream has told us so far. Text is kept as a list of deltas and joined once."""

    provider: str
    parts: list[str] = field(default_factory=list)
    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    done: bool = False

    def apply(self, chunk: Mapping[str, Any], secrets: tuple[str, ...]) -> str | None:
        """Record one chunk; returns its text delta, if any. Raises for an error reported in-stream.

        ``dict`` checks, not ``Mapping``: parsed JSON is always dicts, and ABC checks cost per token."""
        if isinstance(chunk.get("error"), dict):
            raise _stream_error(chunk["error"], self.provider, secrets)
        self.id = self.id or _str_or_none(chunk.get("id"))
        self.model = self.model or _str_or_none(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta", choice.get("message"))  # "message" in a non-streamed answer
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str) and content:
            self.parts.append(content)
            return content
        return None

    def response(self, request: LLMRequest, finish: FinishReason) -> LLMResponse:
        """The answer so far. Usage is the provider's, or estimated if it never came (a cancelled stream)."""
        content = "".join(self.parts)
        usage = self.usage or Usage.of(request.estimated_prompt_tokens(),
                                       estimate_tokens([content]) if content else 0)
        return LLMResponse(id=self.id or f"{self.provider}-{uuid.uuid4().hex}",
                           model=self.model or request.model, content=content, usage=usage,
                           finish_reason=finish, provider=self.provider)


def _usage(raw: Mapping[str, Any]) -> Usage:
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    total = _int(raw.get("total_tokens")) or prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _stream_error(error: Mapping[str, Any], provider: str, secrets: tuple[str, ...]) -> LLMError:
    """An error sent after the 200: an HTTP-like code is classified as such, anything else is stream_error."""
    message = str(error.get("message") or "the provider reported an error mid-stream")
    code = error.get("code")
    status = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    if status is not None and 400 <= status <= 599:
        return error_from_status(status, message, provider=provider, headers={}, secrets=secrets)
    return LLMError(ErrorCode.STREAM_ERROR, redact(message, secrets), provider=provider)


# --- The repository ---------------------------------------------------------------------------------------


class OpenRouterRepository:
    """Streams chat completions from OpenRouter. One instance is shared across threads; so is its client."""

    name = "openrouter"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        referer: str | None,
        title: str,
        connect_timeout: float,
        read_timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "X-Title": title, "Accept": "text/event-stream"}
        if referer:  # OpenRouter's app attribution; without one, requests are simply unattributed
            self._headers["HTTP-Referer"] = referer
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"OpenRouterRepository(url={self._url!r})"

    def generate(
        self,
        request: LLMRequest,
        *,
        on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        completion = _Completion(self.name)
        streaming = False
        try:
            with self._http().stream("POST", self._url, json=request_body(request),
                                     headers=self._headers) as response:
                if not response.is_success:
                    raise self._status_error(response)
                streaming = True
                with watch_deadline(response, deadline):
                    return self._consume(response, request, completion, on_delta, should_cancel, deadline=deadline)
        except httpx.RequestError as exc:
            if streaming and expired(deadline):  # the deadline's socket shutdown (or a cut past it): a pause
                if completion.finish_reason is not None:  # ...unless the answer had just finished
                    return finish_completion(completion, request)
                return completion.response(request, PAUSED)
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.RequestError) -> LLMError:
        if isinstance(exc, httpx.TimeoutException):
            return LLMError(ErrorCode.TIMEOUT, f"OpenRouter did not answer in time ({type(exc).__name__})",
                            provider=self.name)
        return LLMError(ErrorCode.NETWORK_ERROR,
                        redact(f"connection to OpenRouter failed ({type(exc).__name__}: {exc})", (self._api_key,)),
                        provider=self.name)

    def close(self) -> None:
        """Release pooled connections (at shutdown)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        """Built on first use, so constructing a repository is free and never touches the network."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout, transport=self._transport,
                                            follow_redirects=False)
            return self._client

    def _consume(
        self,
        response: httpx.Response,
        request: LLMRequest,
        completion: _Completion,
        on_delta: DeltaCallback | None,
        should_cancel: CancelCheck | None,
        *,
        deadline: float | None,
    ) -> LLMResponse:
        """Read the stream; returning from here closes the response, which is how cancelling (or pausing at
        the deadline) drops it."""
        for event in self._events(response):
            if should_cancel is not None and should_cancel():
                return completion.response(request, "cancelled")
            if event is not None:
                if event.data.strip() == "[DONE]":
                    break
                delta = completion.apply(self._json(event.data), (self._api_key,))
                if delta and on_delta is not None:
                    on_delta(delta)
            if expired(deadline) and completion.finish_reason is None:  # keep what arrived, then stop
                return completion.response(request, PAUSED)
        return self._finish(completion, request)

    @staticmethod
    def _events(response: httpx.Response) -> Iterator[SSEEvent | None]:
        """Events as they complete; None marks a chunk that completed none (a keep-alive comment, say),
        so a cancellation is noticed while the model is still thinking, not only once tokens flow."""
        if response.headers.get("content-type", "").startswith("application/json"):
            yield SSEEvent(data=response.read().decode("utf-8", errors="replace"))
            return
        decoder = SSEDecoder()
        for chunk in response.iter_bytes():
            events: list[SSEEvent | None] = [*decoder.feed(chunk)]
            yield from events or [None]
        yield from decoder.flush()

    def _json(self, data: str) -> Mapping[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise LLMError(ErrorCode.STREAM_ERROR, "OpenRouter sent a malformed stream chunk",
                           provider=self.name)
        return chunk

    def _finish(self, completion: _Completion, request: LLMRequest) -> LLMResponse:
        return finish_completion(completion, request)

    def _status_error(self, response: httpx.Response) -> LLMError:
        body = _read_bounded(response, MAX_ERROR_BODY_BYTES)
        return error_from_status(response.status_code, _error_message(body, response.reason_phrase),
                                 provider=self.name, headers=response.headers, secrets=(self._api_key,))


def finish_completion(completion: _Completion, request: LLMRequest) -> LLMResponse:
    """The finished answer, for a stream that ended or a whole (offloaded) response alike."""
    if completion.finish_reason is None:
        raise LLMError(ErrorCode.TRUNCATED, "the OpenRouter stream ended before a finish reason",
                       provider=completion.provider)
    if completion.finish_reason == "error":
        raise LLMError(ErrorCode.STREAM_ERROR, "OpenRouter finished the stream with an error",
                       provider=completion.provider)
    return completion.response(request, _FINISH_REASONS.get(completion.finish_reason, "stop"))


def request_body(request: LLMRequest, *, stream: bool = True) -> dict[str, Any]:
    """The JSON body: streamed with usage (or, for an offloaded call, not streamed), optional parameters left
    out rather than sent as null."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    for name in _OPTIONAL_FIELDS:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    return body


def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def _error_message(body: bytes, fallback: str) -> str:
    """``error.message`` from an OpenAI-style body, plus the upstream provider's raw detail when given."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:300] or fallback
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return fallback
    message = str(error.get("message") or fallback)
    metadata = error.get("metadata")
    raw = metadata.get("raw") if isinstance(metadata, dict) else None
    if isinstance(raw, str) and raw and raw not in message:
        message = f"{message}: {raw}"
    return message
