"""The mock provider as an OpenAI-compatible completion endpoint, for offloaded calls run offline.

An offloaded call (``step.ai.infer``) is made by the Inngest server, not by the app; with
``LLM_PROVIDER=mock`` there is no provider to call, so the app serves one: ``POST
/mock/v1/chat/completions`` answers an OpenAI chat completion (non-streaming) from the mock provider. It is a
stand-in for a provider, not part of the API, so it lives outside /api and speaks the provider's dialect.

It exists only in mock mode (never next to a real provider), and it wants the bearer token
:func:`agentic.providers.offload.mock_gateway_key` derives from the signing key, which only the app's own
offloaded calls carry. Errors are OpenAI-shaped (``{"error": {"code", "message"}}``), as the gateway error
classification expects of any OpenAI-compatible provider.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from pydantic import ValidationError

from agentic.config import Settings
from agentic.domain.errors import LLMError
from agentic.domain.llm import LLMRequest, LLMResponse
from agentic.providers.mock import MockLLMRepository
from agentic.providers.offload import MOCK_GATEWAY_PATH, mock_gateway_key
from agentic.web.auth import bearer_token

#: The request fields passed on to the mock; the rest of the OpenAI body (``n``, ``user``, …) is ignored.
_FIELDS = frozenset(LLMRequest.model_fields)


def register_mock_gateway(app: Flask, settings: Settings) -> None:
    """Serve the mock completion route when, and only when, the provider is the mock."""
    if settings.llm_provider != "mock":
        return
    mock = MockLLMRepository(latency_ms=settings.mock_latency_ms, tokens_per_second=settings.mock_tokens_per_second)
    key = mock_gateway_key(settings)
    blueprint = Blueprint("mock_gateway", __name__, url_prefix=MOCK_GATEWAY_PATH)

    @blueprint.post("/chat/completions")
    def chat_completions() -> tuple[Response, int] | Response:
        token = bearer_token(request.headers.get("Authorization"))
        if not token or not hmac.compare_digest(token.encode(), key.encode()):
            answer, status = _error(401, "the mock gateway's token is required (offloaded calls of this app carry it)")
            answer.headers["WWW-Authenticate"] = 'Bearer realm="agentic-mock"'
            return answer, status
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        if body.get("stream"):
            return _error(400, "streaming is not supported here: send stream=false")
        try:
            llm_request = LLMRequest.model_validate({k: v for k, v in body.items() if k in _FIELDS})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return _error(400, f"{where}: {first['msg']}")
        try:
            response = mock.generate(llm_request)
        except LLMError as exc:
            return _error(exc.status or 500, exc.message)
        return jsonify(completion_json(response))

    app.register_blueprint(blueprint)


def completion_json(response: LLMResponse) -> dict[str, Any]:
    """An OpenAI chat completion object for ``response``."""
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": response.content},
                     "finish_reason": response.finish_reason}],
        "usage": response.usage.model_dump(),
    }


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": status, "message": message}}), status
