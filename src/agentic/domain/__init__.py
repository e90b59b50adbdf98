"""Plain domain types and rules: no I/O, no framework imports."""

from agentic.domain.errors import ErrorCode, LLMError
from agentic.domain.jobs import (
    TERMINAL_STATUSES,
    Job,
    JobKind,
    JobStatus,
    can_transition,
)
from agentic.domain.llm import (
    ContextDocument,
    FinishReason,
    LLMRequest,
    LLMResponse,
    Message,
    PreviewRequest,
    PreviewResult,
    Role,
    Usage,
    estimate_tokens,
)

__all__ = [
    "TERMINAL_STATUSES",
    "ContextDocument",
    "ErrorCode",
    "FinishReason",
    "Job",
    "JobKind",
    "JobStatus",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "PreviewRequest",
    "PreviewResult",
    "Role",
    "Usage",
    "can_transition",
    "estimate_tokens",
]
