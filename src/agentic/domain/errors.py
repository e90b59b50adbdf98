"""One error taxonomy for every provider and every job, so callers decide on retries without knowing the
provider, and a failed job's ``error_code`` is always one of these values."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    AUTHENTICATION = "authentication"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    SPEND_LIMIT = "spend_limit"
    MODEL_NOT_FOUND = "model_not_found"
    CONTENT_REFUSED = "content_refused"
    NOT_CONFIGURED = "not_configured"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"
    OVERLOADED = "overloaded"
    NETWORK_ERROR = "network_error"
    STREAM_ERROR = "stream_error"
    TRUNCATED = "truncated"
    # Job-level codes: set by the service, never by a provider.
    QUEUE_UNAVAILABLE = "queue_unavailable"
    #: failed by the cleanup: processing with no change for STUCK_JOB_MINUTES
    STUCK = "stuck"
    #: failed by the cleanup: still pending after PENDING_JOB_MINUTES (its event never accepted, its run never
    #: started: say the worker died between storing the job and recording a failed send)
    QUEUE_LOST = "queue_lost"
    MAX_CONTINUATIONS = "max_continuations"  # a long answer needed more segments than MAX_CONTINUATIONS allows
    FUNCTION_FAILED = "function_failed"  # the run gave up without a classified provider error
    INTERNAL = "internal"


RETRIABLE_CODES = frozenset({
    ErrorCode.TIMEOUT,
    ErrorCode.RATE_LIMITED,
    ErrorCode.UPSTREAM_ERROR,
    ErrorCode.OVERLOADED,
    ErrorCode.NETWORK_ERROR,
    ErrorCode.STREAM_ERROR,
    ErrorCode.TRUNCATED,
})


class LLMError(Exception):
    """A provider failure, classified. ``retriable`` says whether the same call may succeed later."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        retriable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.retriable = code in RETRIABLE_CODES if retriable is None else retriable

    def __repr__(self) -> str:
        return (f"LLMError(code={self.code.value!r}, provider={self.provider!r}, status={self.status!r}, "
                f"retriable={self.retriable!r}, retry_after={self.retry_after!r}, message={self.message!r})")

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "message": self.message, "provider": self.provider,
                "status": self.status, "retriable": self.retriable, "retry_after": self.retry_after}
