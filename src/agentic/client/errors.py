"""The client's exceptions: one type per family of the API's problem ``code``, built from problem+json.

Every API error is an :class:`ApiError` carrying ``status``, ``code``, ``detail``, ``field`` and the whole
``problem``; catch a family (``NotFoundError``, ``ConflictError``, ...) or switch on ``code``. Failures
that never got an answer are :class:`ConnectionFailed`; a ``wait`` that ran out of time is
:class:`WaitTimeout`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx


class AgenticError(Exception):
    """Base of everything this client raises."""


class ApiError(AgenticError):
    """An error answer from the API (problem+json)."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 problem: Mapping[str, Any] | None = None, retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.problem: dict[str, Any] = dict(problem or {})
        self.retry_after = retry_after
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status} {self.code}: {self.detail}{where}"


class AuthenticationError(ApiError):
    """401: a missing, malformed, unknown or revoked API key, or a bad or expired job token."""


class NotFoundError(ApiError):
    """404: no such job for this key's user (another user's job too), or no such route."""


class InvalidRequestError(ApiError):
    """400, 413, 415, 422: the request itself is wrong; ``field`` names the culprit when one is."""


class ConflictError(ApiError):
    """409: see the subclasses."""


class JobFinishedError(ConflictError):
    """409 job_finished: the job ended before it could be cancelled (``problem["job_status"]`` says how)."""


class IdempotencyConflictError(ConflictError):
    """409 idempotency_conflict: the Idempotency-Key was used before for a different request."""


class RateLimitError(ApiError):
    """429: rate_limited (the provider) or too_many_streams; ``retry_after`` is the server's hint."""


class ProviderError(ApiError):
    """502/504: the LLM provider failed on the direct path; ``code`` is the taxonomy's (overloaded, ...)."""


class UnavailableError(ApiError):
    """503: queue_unavailable, database_unavailable or provider_not_configured."""


class ServerError(ApiError):
    """500 and anything else unexpected from the server."""


class ConnectionFailed(AgenticError):
    """The API could not be reached (or kept dropping the connection) after every retry."""


class WaitTimeout(AgenticError, TimeoutError):
    """``wait`` gave up before the job finished; the job itself goes on."""


_BY_CODE: dict[str, type[ApiError]] = {
    "job_finished": JobFinishedError,
    "idempotency_conflict": IdempotencyConflictError,
    "provider_not_configured": UnavailableError,
    "queue_unavailable": UnavailableError,
    "database_unavailable": UnavailableError,
    "rate_limited": RateLimitError,
    "too_many_streams": RateLimitError,
}

_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError,
    405: InvalidRequestError, 409: ConflictError, 413: InvalidRequestError, 415: InvalidRequestError,
    422: InvalidRequestError, 429: RateLimitError, 502: ProviderError, 503: UnavailableError,
    504: ProviderError,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (the API sends integers); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            import time

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error answer (whose body must have been read)."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    status = response.status_code
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or response.reason_phrase or "error")
    field = problem.get("field")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, code, detail, field=str(field) if field else None, problem=problem,
               retry_after=retry_after_seconds(response))


__all__ = [
    "AgenticError",
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "ConnectionFailed",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "JobFinishedError",
    "NotFoundError",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "UnavailableError",
    "WaitTimeout",
    "error_from_response",
]
