"""Offloaded calls: the Inngest server makes the provider request itself (``ctx.step.ai.infer``).

For models that cannot be continued by prefill (:mod:`agentic.providers.longcalls`), the function hands the
whole, non-streaming request to Inngest and is not running while the model thinks: no host time limit
applies and no compute is billed. The trade: no partial output, and the provider key travels inside the step
request to the Inngest server (Cloud or self-hosted), which makes the call.

The wiring, inside ``llm-generate``::

    call = offload_call(request, settings, app_origin=current_app_origin())
    try:
        data = ctx.step.ai.infer("call-llm", adapter=call.adapter, body=call.body)
    except inngest.StepError as error:  # the gateway failed on every attempt
        raise call.error(error) from None          # an LLMError: fail the job with its code
    response = call.parse(data, request)           # LLMResponse; store it in a step

What the server does (inngest executor ``handleGeneratorAIGateway``, package ``aigateway``): it POSTs
``body`` to the adapter's URL with ``content-type: application/json``, the key as ``Authorization: Bearer``
(``openai-chat``) or ``x-api-key`` (``anthropic``) and the adapter's headers. A 2xx answer becomes the step's
output, ``{"data": <provider JSON>}``, which ``infer`` returns. Anything else (> 299, or no answer) is retried
like a failed step; after the last attempt the SDK raises ``inngest.StepError`` named ``AIGatewayError``,
message ``Error making AI request: unsuccessful status code: N`` (or the network error), and ``stack`` holding
the provider's body (``{"error":"Error making AI request"}`` when it sent none).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import inngest
from inngest.experimental import ai

from agentic.config import Settings
from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.llm import LLMRequest, LLMResponse
from agentic.providers.claude import _ERROR_TYPE_STATUS, _STOP_REASONS, DEFAULT_MAX_TOKENS, _error_details, _Message
from agentic.providers.errors import error_from_status, redact
from agentic.providers.openrouter import _Completion, _error_message, finish_completion, request_body

GatewayFormat = Literal["openai-chat", "anthropic"]

#: The Messages API version the offloaded Claude calls ask for (the SDK adapter's default too).
ANTHROPIC_VERSION: Final = "2023-06-01"
ANTHROPIC_DEFAULT_BASE: Final = "https://api.anthropic.com"
#: The mock provider's OpenAI-compatible completion route, served by the app itself in mock mode.
MOCK_GATEWAY_PATH: Final = "/mock/v1"
_STATUS = re.compile(r"unsuccessful status code: (\d{3})")


@dataclass(frozen=True)
class OffloadCall:
    """What ``ctx.step.ai.infer`` needs: the adapter (URL, format, key, headers) and the request body."""

    adapter: ai.BaseAdapter
    body: dict[str, Any]
    format: GatewayFormat
    provider: str
    #: The key the adapter carries, so error messages can be scrubbed of it.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def url(self) -> str:
        return self.adapter.url_infer()

    def parse(self, data: object, request: LLMRequest) -> LLMResponse:
        """:func:`parse_offloaded` for this call's format and provider."""
        return parse_offloaded(data, request, self.format, provider=self.provider)

    def error(self, error: inngest.StepError) -> LLMError:
        """:func:`gateway_error` for this call's provider, scrubbed of its key."""
        return gateway_error(error, provider=self.provider, secrets=self.secrets)


def offload_call(request: LLMRequest, settings: Settings, *, provider: str | None = None,
                 app_origin: str | None = None) -> OffloadCall:
    """The offloaded form of ``request`` for ``provider`` (default ``LLM_PROVIDER``).

    OpenRouter goes through the OpenAI-chat format with ``OPENROUTER_BASE_URL`` and the attribution headers;
    Claude through the Anthropic format with its version header; the mock through the app's own
    OpenAI-compatible route at ``app_origin`` (the URL Inngest reaches the app at, see
    :func:`current_app_origin`). Raises ``LLMError(not_configured)`` when the key is missing.
    """
    name = provider or settings.llm_provider
    if name == "openrouter":
        key = _key(settings.openrouter_api_key, "OPENROUTER_API_KEY", name)
        headers = {"X-Title": settings.openrouter_title}
        if settings.openrouter_referer:
            headers["HTTP-Referer"] = settings.openrouter_referer
        adapter: ai.BaseAdapter = ai.openai.Adapter(
            auth_key=key, base_url=str(settings.openrouter_base_url).rstrip("/"), headers=headers,
            model=request.model)
        return OffloadCall(adapter, request_body(request, stream=False), "openai-chat", name, (key,))
    if name == "anthropic":
        key = _key(settings.anthropic_api_key, "ANTHROPIC_API_KEY", name)
        base = str(settings.anthropic_base_url or ANTHROPIC_DEFAULT_BASE).rstrip("/") + "/v1"
        adapter = ai.anthropic.Adapter(auth_key=key, base_url=base,
                                       headers={"anthropic-version": ANTHROPIC_VERSION}, model=request.model)
        return OffloadCall(adapter, anthropic_body(request), "anthropic", name, (key,))
    if name == "mock":
        if not app_origin:
            raise ValueError("the mock provider's offloaded calls need the app's origin (app_origin)")
        key = mock_gateway_key(settings)
        adapter = ai.openai.Adapter(auth_key=key, base_url=app_origin.rstrip("/") + MOCK_GATEWAY_PATH,
                                    model=request.model)
        return OffloadCall(adapter, request_body(request, stream=False), "openai-chat", name, (key,))
    raise LLMError(ErrorCode.NOT_CONFIGURED, f"unknown LLM provider {name!r}", provider=name)


def anthropic_body(request: LLMRequest) -> dict[str, Any]:
    """A non-streaming Messages API body, with the same fields the Claude provider sends when streaming."""
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
                     for m in request.conversation],
    }
    if request.system_prompt is not None:
        body["system"] = request.system_prompt
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    return body


def parse_offloaded(data: object, request: LLMRequest, format: GatewayFormat, *,
                    provider: str | None = None) -> LLMResponse:
    """The provider's JSON (what ``infer`` returned) as our response: content, usage, finish reason.

    Parsed by the same code as the streamed answers (an OpenAI chat completion is one chunk whose ``message``
    is the whole text; an Anthropic message fills the same accumulator as its stream events). An error the
    provider reported inside a 2xx body is classified like the same error before a stream.
    """
    if not isinstance(data, dict):
        raise LLMError(ErrorCode.STREAM_ERROR, "the offloaded call returned no JSON object",
                       provider=provider or ("anthropic" if format == "anthropic" else "openrouter"))
    if format == "anthropic":
        return _parse_anthropic(data, request)
    completion = _Completion(provider or "openrouter")
    completion.apply(data, ())
    return finish_completion(completion, request)


def _parse_anthropic(data: Mapping[str, Any], request: LLMRequest) -> LLMResponse:
    if data.get("type") == "error":
        error_type, message = _error_details(data)
        status = _ERROR_TYPE_STATUS.get(error_type or "")
        text = message or "Anthropic reported an error"
        if status is None:
            raise LLMError(ErrorCode.STREAM_ERROR, redact(text), provider="anthropic")
        raise error_from_status(status, text, provider="anthropic", headers={})
    blocks = data.get("content")
    raw_usage = data.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    stop_reason = data.get("stop_reason")
    accumulated = _Message(
        parts=[b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "text"
               and isinstance(b.get("text"), str)] if isinstance(blocks, list) else [],
        id=_str(data.get("id")), model=_str(data.get("model")), output_tokens=_count(usage.get("output_tokens")),
        stop_reason=_str(stop_reason), stopped=True)
    accumulated._count_input(_count(usage.get("input_tokens")), _count(usage.get("cache_creation_input_tokens")),
                             _count(usage.get("cache_read_input_tokens")))
    return accumulated.response(request, _STOP_REASONS.get(accumulated.stop_reason or "", "stop"))


def gateway_error(error: inngest.StepError, *, provider: str, secrets: Iterable[str] = ()) -> LLMError:
    """Classify the ``StepError`` an offloaded call raises once the gateway's attempts ran out.

    The status in its message and the provider's body in its ``stack`` go through the same taxonomy as a
    streamed call's failure (401 -> authentication, 429 -> rate_limited, ...). No status means the server
    never got an answer (a network error). Another step's error is reported as internal, never guessed at.
    The server keeps no response headers, so a 429 carries no ``retry_after`` here.
    """
    secrets = tuple(secrets)
    if error.name != "AIGatewayError":
        return LLMError(ErrorCode.INTERNAL, redact(f"{error.name}: {error.message}", secrets), provider=provider)
    match = _STATUS.search(error.message)
    if match is None:
        return LLMError(ErrorCode.NETWORK_ERROR,
                        redact(f"the Inngest server could not reach the provider ({error.message})", secrets),
                        provider=provider)
    status = int(match.group(1))
    message = _error_message((error.stack or "").encode(), f"HTTP {status}")
    return error_from_status(status, message, provider=provider, headers={}, secrets=secrets)


def mock_gateway_key(settings: Settings) -> str:
    """The bearer token the mock completion route expects and the mock's offloaded calls send.

    Derived from the signing key when there is one (so it differs per deployment and is never guessable);
    in dev mode without one it is a fixed ``mock``: the route exists only with ``LLM_PROVIDER=mock``.
    """
    signing_key = settings.inngest_signing_key
    if signing_key is None:
        return "mock"
    digest = hmac.new(signing_key.get_secret_value().encode(), b"agentic mock gateway", hashlib.sha256)
    return "mock-" + digest.hexdigest()


def current_app_origin() -> str | None:
    """The origin Inngest reaches the app at: ``INNGEST_SERVE_ORIGIN`` when set, else the origin of the
    request being served (inside a step, Inngest's own call to ``/api/inngest``)."""
    configured = os.environ.get("INNGEST_SERVE_ORIGIN", "").strip()
    if configured:
        return configured.rstrip("/")
    from flask import has_request_context, request

    return request.host_url.rstrip("/") if has_request_context() else None


def _key(secret: Any, variable: str, provider: str) -> str:
    key = secret.get_secret_value().strip() if secret is not None else ""
    if not key:
        raise LLMError(ErrorCode.NOT_CONFIGURED, f"{variable} is not set", provider=provider)
    return key


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

