"""Turn a provider's HTTP failure into an :class:`LLMError`, the same way for every provider.

The code decides retries upstream, so the mapping is deliberately conservative: only failures that can
succeed unchanged later (429, 5xx, 529, timeouts) are retriable. Messages come from the provider's body and
are scrubbed of anything that looks like an API key before they can reach a log or a job row.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from agentic.domain.errors import ErrorCode, LLMError

#: Longest provider message kept; bodies can be whole HTML error pages.
MAX_MESSAGE_CHARS = 500
#: A hint further out than this is treated as nonsense rather than honoured.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0

_STATUS_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTHENTICATION,
    402: ErrorCode.INSUFFICIENT_CREDITS,
    403: ErrorCode.AUTHENTICATION,
    404: ErrorCode.MODEL_NOT_FOUND,
    408: ErrorCode.TIMEOUT,
    413: ErrorCode.CONTEXT_TOO_LONG,
    429: ErrorCode.RATE_LIMITED,
    500: ErrorCode.UPSTREAM_ERROR,
    502: ErrorCode.UPSTREAM_ERROR,
    503: ErrorCode.UPSTREAM_ERROR,
    504: ErrorCode.UPSTREAM_ERROR,
    529: ErrorCode.OVERLOADED,
}

_CONTEXT_TOO_LONG = re.compile(
    r"context[ _-]?(length|window)|too many tokens|maximum context|prompt is too long", re.IGNORECASE)
_LOW_CREDIT = re.compile(r"credit balance is too low|insufficient (credits|funds|balance)", re.IGNORECASE)
_MODERATION = re.compile(r"moderation|flagged", re.IGNORECASE)
_SPEND_LIMIT = re.compile(r"spend(ing)? limit|usage limit|billing|credit", re.IGNORECASE)
#: Bearer tokens and the key shapes OpenRouter (sk-or-…) and Anthropic (sk-ant-…) hand out.
_KEY_LIKE = re.compile(r"(?i)\bbearer\s+\S+|\bsk-[A-Za-z0-9_-]{6,}")

# Reset headers, each paired with the "remaining" header that says whether that limit is the one hit.
_RESET_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-ratelimit-reset", "x-ratelimit-remaining"),
    ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
    ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
    ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
    ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
)


def error_from_status(
    status: int,
    message: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    secrets: Iterable[str] = (),
) -> LLMError:
    """Classify a non-2xx answer. ``secrets`` (the caller's API key) are removed from the message."""
    text = redact(message, secrets) or f"HTTP {status}"
    code = _code_for(status, text, provider)
    retry_after = parse_retry_after(headers) if code in (ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED,
                                                         ErrorCode.UPSTREAM_ERROR) else None
    return LLMError(code, text, provider=provider, status=status, retry_after=retry_after)


def _code_for(status: int, message: str, provider: str) -> ErrorCode:
    if status in (400, 413) and _CONTEXT_TOO_LONG.search(message):
        return ErrorCode.CONTEXT_TOO_LONG
    if status == 400 and _LOW_CREDIT.search(message):
        return ErrorCode.INSUFFICIENT_CREDITS
    if status == 403 and _MODERATION.search(message):
        return ErrorCode.CONTENT_REFUSED
    # Anthropic answers 429 both for "slow down" and for "your workspace spend limit is reached";
    # only the first gets better by waiting a few seconds.
    if status == 429 and provider == "anthropic" and _SPEND_LIMIT.search(message):
        return ErrorCode.SPEND_LIMIT
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return ErrorCode.UPSTREAM_ERROR if status >= 500 else ErrorCode.BAD_REQUEST


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Strip the given secrets and anything key-shaped, and bound the length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text).strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait before retrying, or None when the headers give no usable hint.

    ``retry-after`` (or ``retry-after-ms``) is the server's own answer and wins. Otherwise the reset time of
    a limit reported as exhausted (``…-remaining: 0``) is used, else the soonest reset, since we cannot
    tell which limit was hit. Values in the past or absurdly far out are ignored.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    clock = time.time() if now is None else now
    explicit = _explicit_retry_after(lowered, clock)
    if explicit is not None:
        return explicit
    exhausted: list[float] = []
    others: list[float] = []
    for reset_name, remaining_name in _RESET_HEADERS:
        delay = _sensible(_reset_delay(lowered.get(reset_name), clock))
        if delay:  # a reset already passed says nothing about why this request was refused
            (exhausted if lowered.get(remaining_name, "").strip() == "0" else others).append(delay)
    candidates = exhausted or others
    return min(candidates) if candidates else None


def _explicit_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None and (delay := _sensible(millis / 1000)) is not None:
        return delay
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return _sensible(seconds)
    return _sensible(_date_delay(value, now))


def _reset_delay(value: str | None, now: float) -> float | None:
    """A reset header as a delay: epoch milliseconds or seconds, a small relative count, or a timestamp."""
    if value is None:
        return None
    number = _number(value)
    if number is None:
        return _date_delay(value, now)
    if number >= 1e11:  # epoch milliseconds (OpenRouter)
        return number / 1000 - now
    if number >= 1e9:  # epoch seconds
        return number - now
    return number


def _date_delay(value: str, now: float) -> float | None:
    """Seconds until an RFC 3339 or HTTP-date timestamp."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:  # HTTP dates are GMT by definition; read any zoneless stamp as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _sensible(delay: float | None) -> float | None:
    if delay is None or delay < 0 or delay > MAX_RETRY_AFTER_SECONDS:
        return None
    return round(delay, 3)
