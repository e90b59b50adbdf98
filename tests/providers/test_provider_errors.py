"""HTTP failure classification and retry hints, shared by the real providers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from agentic.domain.errors import ErrorCode
from agentic.providers.errors import MAX_MESSAGE_CHARS, error_from_status, parse_retry_after, redact

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
T = NOW.timestamp()


@pytest.mark.parametrize(("status", "message", "provider", "code", "retriable"), [
    (400, "temperature must be at most 1", "openrouter", ErrorCode.BAD_REQUEST, False),
    (400, "This endpoint's maximum context length is 8192 tokens", "openrouter",
     ErrorCode.CONTEXT_TOO_LONG, False),
    (400, "prompt is too long: 210000 tokens > 200000 maximum", "anthropic",
     ErrorCode.CONTEXT_TOO_LONG, False),
    (400, "Too many tokens in the request", "openrouter", ErrorCode.CONTEXT_TOO_LONG, False),
    (400, "Your credit balance is too low to access the Anthropic API", "anthropic",
     ErrorCode.INSUFFICIENT_CREDITS, False),
    (401, "No auth credentials found", "openrouter", ErrorCode.AUTHENTICATION, False),
    (402, "Insufficient credits", "openrouter", ErrorCode.INSUFFICIENT_CREDITS, False),
    (403, "Key is disabled", "openrouter", ErrorCode.AUTHENTICATION, False),
    (403, "meta-llama/llama-guard requires moderation: your input was flagged", "openrouter",
     ErrorCode.CONTENT_REFUSED, False),
    (404, "No endpoints found for x/y", "openrouter", ErrorCode.MODEL_NOT_FOUND, False),
    (408, "Request timeout", "openrouter", ErrorCode.TIMEOUT, True),
    (409, "conflict", "openrouter", ErrorCode.BAD_REQUEST, False),
    (413, "Request too large", "anthropic", ErrorCode.CONTEXT_TOO_LONG, False),
    (422, "unprocessable", "openrouter", ErrorCode.BAD_REQUEST, False),
    (429, "Rate limit exceeded", "openrouter", ErrorCode.RATE_LIMITED, True),
    (429, "Add 10 credits to unlock more requests", "openrouter", ErrorCode.RATE_LIMITED, True),
    (429, "This request would exceed the rate limit for your organization", "anthropic",
     ErrorCode.RATE_LIMITED, True),
    (429, "You have reached your specified API usage limits. You will regain access on 2025-07-01",
     "anthropic", ErrorCode.SPEND_LIMIT, False),
    (429, "Your workspace has reached its spend limit", "anthropic", ErrorCode.SPEND_LIMIT, False),
    (500, "Internal error", "openrouter", ErrorCode.UPSTREAM_ERROR, True),
    (502, "Bad gateway", "openrouter", ErrorCode.UPSTREAM_ERROR, True),
    (503, "No available provider", "openrouter", ErrorCode.UPSTREAM_ERROR, True),
    (504, "Gateway timeout", "anthropic", ErrorCode.UPSTREAM_ERROR, True),
    (507, "odd", "openrouter", ErrorCode.UPSTREAM_ERROR, True),
    (529, "Overloaded", "anthropic", ErrorCode.OVERLOADED, True),
])
def test_status_mapping(status: int, message: str, provider: str, code: ErrorCode, retriable: bool) -> None:
    error = error_from_status(status, message, provider=provider, headers={})
    assert (error.code, error.retriable, error.status, error.provider) == (code, retriable, status, provider)
    assert error.message == message


def test_empty_message_falls_back_to_the_status() -> None:
    assert error_from_status(502, "  ", provider="openrouter", headers={}).message == "HTTP 502"


def test_rate_limit_carries_retry_after() -> None:
    error = error_from_status(429, "slow down", provider="openrouter", headers={"Retry-After": "7"})
    assert error.retry_after == 7.0


def test_client_errors_carry_no_retry_hint() -> None:
    error = error_from_status(400, "bad", provider="openrouter", headers={"retry-after": "7"})
    assert error.retry_after is None


def test_secrets_and_key_shapes_are_redacted_and_long_messages_bounded() -> None:
    message = "Invalid key my-secret-value; also sk-or-v1-abcdef0123456789 and Bearer tok123 " + "x" * 2000
    error = error_from_status(401, message, provider="openrouter", headers={}, secrets=["my-secret-value"])
    assert "my-secret-value" not in error.message
    assert "sk-or-v1-abcdef" not in error.message
    assert "tok123" not in error.message
    assert len(error.message) <= MAX_MESSAGE_CHARS


def test_redact_ignores_empty_secrets() -> None:
    assert redact("plain text", ["", "absent"]) == "plain text"


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None),
    ({"retry-after": "12"}, 12.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
    ({"retry-after": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, None),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "-3"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": str(10 * 24 * 3600)}, None),
    ({"retry-after-ms": "2500"}, 2.5),
    # OpenRouter: epoch milliseconds
    ({"x-ratelimit-reset": str(int((T + 20) * 1000))}, 20.0),
    ({"x-ratelimit-reset": str(int((T - 20) * 1000))}, None),
    # Anthropic: RFC 3339 resets; the soonest when none says which limit was hit
    ({"anthropic-ratelimit-requests-reset": "2025-06-01T12:00:09Z",
      "anthropic-ratelimit-tokens-reset": "2025-06-01T12:00:04Z"}, 4.0),
    # ... but the exhausted one when a remaining header says so
    ({"anthropic-ratelimit-requests-reset": "2025-06-01T12:00:09Z",
      "anthropic-ratelimit-requests-remaining": "0",
      "anthropic-ratelimit-tokens-reset": "2025-06-01T12:00:04Z",
      "anthropic-ratelimit-tokens-remaining": "5000"}, 9.0),
    ({"anthropic-ratelimit-tokens-reset": "2025-06-01T13:00:00+01:00"}, None),  # already reset: no hint
    ({"anthropic-ratelimit-tokens-reset": "2025-06-01T13:00:03+01:00"}, 3.0),
    ({"anthropic-ratelimit-tokens-reset": "garbage"}, None),
    # retry-after is the server's own answer and wins over reset times
    ({"retry-after": "15", "anthropic-ratelimit-tokens-reset": "2025-06-01T12:00:04Z"}, 15.0),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=T) == expected
